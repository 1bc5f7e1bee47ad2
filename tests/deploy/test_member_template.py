"""The member template's custom resource, run against the AWS emulator: its inline
code is taken from deploy/member-account.yaml as CloudFormation would deploy it, and
it sets, reads back and removes Bedrock's model-invocation logging configuration,
keeps what the account had and gives it back, and answers CloudFormation on success
and on failure, in time.

The emulator (moto 5.2.5) keeps the logging configuration it is given as it is
(cloudWatchConfig, s3Config and the delivery flags), and Delete leaves it empty. Its
SSM Parameter Store answers GetParameters and DeleteParameters for a missing name with
the name in InvalidParameters, as AWS does, and PutParameter overwrites with
Overwrite=True.

Run by scripts/test with the emulator's AWS_ENDPOINT_URL set.
"""
import base64
import http.server
import json
import os
import re
import threading
import time
import types
import unittest

import boto3
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The stack the events come from, and the SSM parameter in which the function keeps the
# S3 destination an Update replaced: /bedrock-denied-models/<stack name>/<stack uuid>.
STACK_UUID = "5b1e0f40-8c3a-11ef-9d2b-0a1b2c3d4e5f"
STACK_ID = "arn:aws:cloudformation:us-east-1:111122223333:stack/member/" + STACK_UUID
PARAMETER = "/bedrock-denied-models/member/" + STACK_UUID


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation YAML: every !Tag becomes its plain value."""


_Loader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_scalar(node)
        if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
    ),
)


def member_template():
    with open(os.path.join(ROOT, "deploy", "member-account.yaml")) as f:
        return yaml.load(f, Loader=_Loader)


def custom_resource_module():
    template = member_template()
    code = template["Resources"]["LoggingConfigFunction"]["Properties"]["Code"]["ZipFile"]
    assert len(code) <= 4096, "inline Lambda code is limited to 4096 characters"
    module = types.ModuleType("index")
    exec(compile(code, "index.py", "exec"), module.__dict__)
    return module


class _Responses(http.server.BaseHTTPRequestHandler):
    received = []

    def do_PUT(self):
        length = int(self.headers.get("Content-Length", 0))
        _Responses.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class _Context:
    """The part of Lambda's context the function reads: the time left."""

    def __init__(self, seconds=60):
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)


class _Failing:
    """A Bedrock client whose every call raises `error`; it counts the calls."""

    def __init__(self, error):
        self.error, self.calls = error, 0

    def __getattr__(self, name):
        def call(**kwargs):
            self.calls += 1
            raise self.error

        return call


def _client_error(code, message):
    return ClientError({"Error": {"Code": code, "Message": message}}, "GetModelInvocationLoggingConfiguration")


class MemberCustomResource(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1:"):
            raise RuntimeError("needs the AWS emulator: run ./scripts/test")
        cls.index = custom_resource_module()
        cls.bedrock = boto3.client("bedrock", region_name="us-east-1")
        cls.ssm = boto3.client("ssm", region_name="us-east-1")
        cls.server = http.server.HTTPServer(("127.0.0.1", 0), _Responses)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def setUp(self):
        _Responses.received.clear()
        self.bedrock.delete_model_invocation_logging_configuration()
        self.ssm.delete_parameters(Names=[PARAMETER])

    def event(self, request_type, bucket, physical_id=None, old_bucket=None, take_over=None,
              old_take_over=None):
        """What CloudFormation sends: the physical id on Update and Delete, the old
        properties on Update."""
        event = {
            "RequestType": request_type,
            "ResponseURL": "http://127.0.0.1:%d/response" % self.server.server_port,
            "StackId": STACK_ID,
            "RequestId": "r-1",
            "LogicalResourceId": "InvocationLogging",
            "ResourceProperties": {"BucketName": bucket},
        }
        if take_over is not None:
            event["ResourceProperties"]["TakeOverExistingS3Destination"] = take_over
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_bucket is not None:
            event["OldResourceProperties"] = {"BucketName": old_bucket}
        if old_take_over is not None:
            event["OldResourceProperties"]["TakeOverExistingS3Destination"] = old_take_over
        return event

    def run_handler(self, event, client="emulator", context=None):
        """Runs the function on `event` (with the emulator's client, a fake, or None for
        the one the function makes); its one answer to CloudFormation."""
        _Responses.received.clear()
        if client == "emulator":
            client = self.bedrock
        self.index.handler(event, context or _Context(), client)
        self.assertEqual(len(_Responses.received), 1, "exactly one answer")
        return _Responses.received[0]

    def config(self):
        return self.bedrock.get_model_invocation_logging_configuration().get("loggingConfig") or {}

    def kept(self):
        """The SSM parameter's value (the base64 of the s3Config an Update replaced), or
        None."""
        found = self.ssm.get_parameters(Names=[PARAMETER])["Parameters"]
        return found[0]["Value"] if found else None

    def current_bucket(self):
        config = self.bedrock.get_model_invocation_logging_configuration().get("loggingConfig") or {}
        return (config.get("s3Config") or {}).get("bucketName")

    def test_create_sets_and_reads_back_logging_to_the_bucket(self):
        self.index.handler(self.event("Create", "bedrock-logs-a"), _Context(), self.bedrock)
        self.assertEqual(self.current_bucket(), "bedrock-logs-a")
        config = self.bedrock.get_model_invocation_logging_configuration()["loggingConfig"]
        self.assertTrue(config["textDataDeliveryEnabled"])
        self.assertEqual(len(_Responses.received), 1)
        answer = _Responses.received[0]
        self.assertEqual(answer["Status"], "SUCCESS")
        self.assertEqual(answer["Data"], {"BucketName": "bedrock-logs-a"})
        self.assertEqual(answer["PhysicalResourceId"], "bedrock-invocation-logging")

    def test_update_points_logging_at_the_new_bucket(self):
        self.index.handler(self.event("Create", "bedrock-logs-a"), _Context(), self.bedrock)
        created = _Responses.received[-1]["PhysicalResourceId"]
        self.index.handler(
            self.event("Update", "bedrock-logs-b", created, old_bucket="bedrock-logs-a"),
            _Context(), self.bedrock)
        self.assertEqual(self.current_bucket(), "bedrock-logs-b")
        # Update keeps what Create saved.
        self.assertEqual(_Responses.received[-1]["Status"], "SUCCESS")
        self.assertEqual(_Responses.received[-1]["PhysicalResourceId"], created)

    def test_delete_removes_only_its_own_configuration(self):
        self.index.handler(self.event("Create", "bedrock-logs-a"), _Context(), self.bedrock)
        created = _Responses.received[-1]["PhysicalResourceId"]
        self.index.handler(
            self.event("Delete", "someone-elses-bucket", created), _Context(), self.bedrock)
        self.assertEqual(self.current_bucket(), "bedrock-logs-a", "not ours: kept")
        self.index.handler(self.event("Delete", "bedrock-logs-a", created), _Context(), self.bedrock)
        self.assertIsNone(self.current_bucket())
        self.assertEqual([a["Status"] for a in _Responses.received], ["SUCCESS"] * 3)

    def test_a_failure_still_answers_cloudformation(self):
        class Refusing:
            def get_model_invocation_logging_configuration(self):
                return {}

            def put_model_invocation_logging_configuration(self, **kwargs):
                raise RuntimeError("ValidationException: Failed to validate permissions")

        self.index.handler(self.event("Create", "bedrock-logs-a"), _Context(), Refusing())
        self.assertEqual(len(_Responses.received), 1)
        self.assertEqual(_Responses.received[0]["Status"], "FAILED")
        self.assertIn("Failed to validate permissions", _Responses.received[0]["Reason"])


    # What the account had before the stack: kept on Create, given back on Delete.

    def test_create_keeps_a_cloudwatch_destination_and_the_delivery_settings(self):
        before = {
            "cloudWatchConfig": {
                "logGroupName": "/aws/bedrock/invocations",
                "roleArn": "arn:aws:iam::111122223333:role/bedrock-logging",
                "largeDataDeliveryS3Config": {"bucketName": "bedrock-large-data", "keyPrefix": "large/"},
            },
            "textDataDeliveryEnabled": True,
            "imageDataDeliveryEnabled": True,
            "embeddingDataDeliveryEnabled": True,
        }
        self.bedrock.put_model_invocation_logging_configuration(loggingConfig=before)
        created = self.run_handler(self.event("Create", "bedrock-logs-a"))
        self.assertEqual(created["Status"], "SUCCESS", created["Reason"])
        self.assertEqual(
            self.config(), dict(before, s3Config={"bucketName": "bedrock-logs-a", "keyPrefix": ""}))
        deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", created["PhysicalResourceId"]))
        self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        self.assertEqual(self.config(), before, "CloudWatch Logs and the settings stay, the S3 destination goes")

    def test_an_existing_s3_destination_is_refused_then_taken_over_and_given_back(self):
        before = {
            "s3Config": {"bucketName": "team-bedrock-logs", "keyPrefix": "bedrock/"},
            "textDataDeliveryEnabled": True,
            "imageDataDeliveryEnabled": False,
            "embeddingDataDeliveryEnabled": True,
        }
        self.bedrock.put_model_invocation_logging_configuration(loggingConfig=before)
        refused = self.run_handler(self.event("Create", "bedrock-logs-a"))
        self.assertEqual(refused["Status"], "FAILED")
        for part in ("team-bedrock-logs", "replicate", "TakeOverExistingS3Destination=true"):
            self.assertIn(part, refused["Reason"])
        self.assertEqual(self.config(), before, "refused: nothing changed")
        # CloudFormation's rollback deletes the failed resource: nothing to give back.
        rolled_back = self.run_handler(self.event("Delete", "bedrock-logs-a", refused["PhysicalResourceId"]))
        self.assertEqual(rolled_back["Status"], "SUCCESS", rolled_back["Reason"])
        self.assertEqual(self.config(), before)
        # Explicitly allowed: the S3 destination is this stack's, the rest stays.
        created = self.run_handler(self.event("Create", "bedrock-logs-a", take_over="true"))
        self.assertEqual(created["Status"], "SUCCESS", created["Reason"])
        self.assertEqual(self.config(), dict(before, s3Config={"bucketName": "bedrock-logs-a", "keyPrefix": ""}))
        kept = created["PhysicalResourceId"]
        self.assertLessEqual(len(kept), 1024, "a physical id is at most 1 KB")
        self.assertEqual(
            json.loads(base64.urlsafe_b64decode(kept.split(":", 1)[1])), before["s3Config"])
        self.assertLessEqual(len(json.dumps(created)), 4096, "a response is at most 4096 bytes")
        updated = self.run_handler(self.event(
            "Update", "bedrock-logs-a", kept, old_bucket="bedrock-logs-a", take_over="true"))
        self.assertEqual((updated["Status"], updated["PhysicalResourceId"]), ("SUCCESS", kept))
        deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", kept, take_over="true"))
        self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        self.assertEqual(self.config(), before, "the team's bucket is given back")

    def test_delete_with_nothing_configured_succeeds(self):
        created = self.run_handler(self.event("Create", "bedrock-logs-a"))
        self.bedrock.delete_model_invocation_logging_configuration()  # removed by hand
        deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", created["PhysicalResourceId"]))
        self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        self.assertEqual(self.config(), {})

    def test_delete_leaves_a_configuration_that_is_no_longer_this_stacks(self):
        created = self.run_handler(self.event("Create", "bedrock-logs-a"))
        since = {"s3Config": {"bucketName": "moved-elsewhere", "keyPrefix": ""}, "textDataDeliveryEnabled": True}
        self.bedrock.put_model_invocation_logging_configuration(loggingConfig=since)
        deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", created["PhysicalResourceId"]))
        self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        self.assertEqual(self.config(), since)

    def test_a_destination_too_long_to_keep_fails_the_create_and_changes_nothing(self):
        before = {"s3Config": {"bucketName": "team-bedrock-logs", "keyPrefix": "p/" * 400}}
        self.bedrock.put_model_invocation_logging_configuration(loggingConfig=before)
        answer = self.run_handler(self.event("Create", "bedrock-logs-a", take_over="true"))
        self.assertEqual(answer["Status"], "FAILED")
        self.assertIn("too long", answer["Reason"])
        self.assertEqual(self.config(), before)
        rolled_back = self.run_handler(self.event("Delete", "bedrock-logs-a", answer["PhysicalResourceId"]))
        self.assertEqual(rolled_back["Status"], "SUCCESS")
        self.assertEqual(self.config(), before)

    # Take-over allowed by an Update: the physical id cannot change (a new one makes
    # CloudFormation delete the old resource), so the stack's SSM parameter keeps what
    # the Update replaced.

    TEAM = {
        "s3Config": {"bucketName": "team-bedrock-logs", "keyPrefix": "bedrock/"},
        "textDataDeliveryEnabled": True,
        "imageDataDeliveryEnabled": False,
        "embeddingDataDeliveryEnabled": True,
    }

    def create_then_let_the_team_take_logging(self):
        """A stack created with TakeOverExistingS3Destination=false and nothing to
        replace; then the account points logging at the team's bucket. The physical id."""
        created = self.run_handler(self.event("Create", "bedrock-logs-a", take_over="false"))
        self.assertEqual(created["Status"], "SUCCESS", created["Reason"])
        self.assertEqual(created["PhysicalResourceId"], "bedrock-invocation-logging")
        self.bedrock.put_model_invocation_logging_configuration(loggingConfig=self.TEAM)
        return created["PhysicalResourceId"]

    def update_taking_over(self, physical_id):
        updated = self.run_handler(self.event(
            "Update", "bedrock-logs-a", physical_id, old_bucket="bedrock-logs-a",
            take_over="true", old_take_over="false"))
        self.assertEqual(updated["Status"], "SUCCESS", updated["Reason"])
        self.assertEqual(updated["PhysicalResourceId"], physical_id, "an Update keeps its physical id")
        self.assertEqual(
            self.config(), dict(self.TEAM, s3Config={"bucketName": "bedrock-logs-a", "keyPrefix": ""}))

    def test_an_update_that_takes_over_keeps_what_it_replaced_for_delete(self):
        created = self.create_then_let_the_team_take_logging()
        # Not allowed yet: refused, nothing changed, nothing kept.
        refused = self.run_handler(self.event(
            "Update", "bedrock-logs-a", created, old_bucket="bedrock-logs-a", take_over="false",
            old_take_over="false"))
        self.assertEqual(refused["Status"], "FAILED")
        self.assertIn("team-bedrock-logs", refused["Reason"])
        self.assertEqual(self.config(), self.TEAM)
        self.assertIsNone(self.kept())
        # Allowed by an Update: the team's S3 destination is kept in the parameter.
        self.update_taking_over(created)
        self.assertIsNotNone(self.kept(), "the Update kept what it replaced")
        self.assertEqual(json.loads(base64.urlsafe_b64decode(self.kept())), self.TEAM["s3Config"])
        # Another Update with nothing to replace keeps what the first one replaced.
        again = self.run_handler(self.event(
            "Update", "bedrock-logs-a", created, old_bucket="bedrock-logs-a", take_over="true",
            old_take_over="true"))
        self.assertEqual(again["Status"], "SUCCESS", again["Reason"])
        self.assertEqual(json.loads(base64.urlsafe_b64decode(self.kept())), self.TEAM["s3Config"])
        # Delete gives the team's bucket back and forgets it; a repeated Delete (as
        # CloudFormation may send) changes nothing.
        for _ in range(2):
            deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", created, take_over="true"))
            self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
            self.assertEqual(self.config(), self.TEAM, "the team's bucket is given back")
            self.assertIsNone(self.kept())

    def test_delete_without_the_kept_destination_removes_its_own(self):
        created = self.create_then_let_the_team_take_logging()
        self.update_taking_over(created)
        self.assertIsNotNone(self.kept(), "the Update kept what it replaced")
        self.ssm.delete_parameters(Names=[PARAMETER])  # lost (deleted by hand)
        deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", created, take_over="true"))
        self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        without_s3 = {k: v for k, v in self.TEAM.items() if k != "s3Config"}
        self.assertEqual(self.config(), {}, "no destination left: the configuration goes")
        # With a CloudWatch Logs destination, that and the settings stay.
        with_cloudwatch = dict(without_s3, cloudWatchConfig={
            "logGroupName": "/aws/bedrock/invocations",
            "roleArn": "arn:aws:iam::111122223333:role/bedrock-logging"})
        self.bedrock.put_model_invocation_logging_configuration(
            loggingConfig=dict(with_cloudwatch, s3Config={"bucketName": "bedrock-logs-a", "keyPrefix": ""}))
        deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", created, take_over="true"))
        self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        self.assertEqual(self.config(), with_cloudwatch)

    def test_a_physical_id_that_keeps_a_destination_is_still_given_back(self):
        # A stack created with take-over (by this version or an earlier one, which kept
        # the replaced destination only in the physical id) and no parameter.
        physical_id = "bedrock-invocation-logging:" + base64.urlsafe_b64encode(
            json.dumps(self.TEAM["s3Config"]).encode()).decode()
        ours = dict(self.TEAM, s3Config={"bucketName": "bedrock-logs-a", "keyPrefix": ""})
        self.bedrock.put_model_invocation_logging_configuration(loggingConfig=ours)
        deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", physical_id, take_over="true"))
        self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        self.assertEqual(self.config(), self.TEAM)
        # If an Update later took over another bucket, that one, the latest replaced,
        # is given back.
        self.bedrock.put_model_invocation_logging_configuration(loggingConfig=ours)
        since = {"bucketName": "moved-elsewhere", "keyPrefix": "x/"}
        self.bedrock.put_model_invocation_logging_configuration(loggingConfig=dict(self.TEAM, s3Config=since))
        updated = self.run_handler(self.event(
            "Update", "bedrock-logs-a", physical_id, old_bucket="bedrock-logs-a", take_over="true",
            old_take_over="true"))
        self.assertEqual((updated["Status"], updated["PhysicalResourceId"]), ("SUCCESS", physical_id))
        deleted = self.run_handler(self.event("Delete", "bedrock-logs-a", physical_id, take_over="true"))
        self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        self.assertEqual(self.config(), dict(self.TEAM, s3Config=since))
        self.assertIsNone(self.kept())

    def test_the_role_may_use_exactly_the_parameter_and_calls_the_function_uses(self):
        template = member_template()
        code = template["Resources"]["LoggingConfigFunction"]["Properties"]["Code"]["ZipFile"]
        statements = template["Resources"]["LoggingConfigRole"]["Properties"]["Policies"][0][
            "PolicyDocument"]["Statement"]
        ssm = [s for s in statements if any(a.startswith("ssm:") for a in s["Action"])]
        self.assertEqual(len(ssm), 1, ssm)
        calls = set(re.findall(r'aws\("ssm"\)\.(\w+)\(', code))
        self.assertEqual(
            set(ssm[0]["Action"]),
            {"ssm:" + "".join(w.capitalize() for w in call.split("_")) for call in calls})
        self.assertEqual(len(calls), 3)
        # !Sub [text, {StackUuid: !Select [2, !Split ["/", !Ref AWS::StackId]]}], as
        # CloudFormation resolves it for STACK_ID.
        text, variables = ssm[0]["Resource"]
        self.assertEqual(variables, {"StackUuid": [2, ["/", "AWS::StackId"]]})
        self.assertEqual(STACK_ID.split("/")[2], STACK_UUID)
        arn = (text.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "us-east-1")
               .replace("${AWS::AccountId}", "111122223333").replace("${AWS::StackName}", "member")
               .replace("${StackUuid}", STACK_UUID))
        self.assertEqual(arn, "arn:aws:ssm:us-east-1:111122223333:parameter" + PARAMETER)
        # The function names that parameter.
        self.create_then_let_the_team_take_logging()
        self.update_taking_over("bedrock-invocation-logging")
        self.assertIsNotNone(self.kept())

    # Bedrock failing or slow: CloudFormation always gets its answer.

    def test_bedrock_failing_on_every_call(self):
        unavailable = [
            EndpointConnectionError(endpoint_url="https://bedrock.ap-east-2.amazonaws.com/logging/modelinvocations"),
            _client_error("UnrecognizedClientException", "The security token included in the request is invalid."),
        ]
        for error in unavailable:
            with self.subTest(error=type(error).__name__):
                bedrock = _Failing(error)
                created = self.run_handler(self.event("Create", "bedrock-logs-a"), bedrock)
                self.assertEqual(created["Status"], "FAILED")
                self.assertTrue(created["Reason"])
                # The rollback after the failed Create does not call Bedrock again.
                calls = bedrock.calls
                rolled_back = self.run_handler(
                    self.event("Delete", "bedrock-logs-a", created["PhysicalResourceId"]), bedrock)
                self.assertEqual(rolled_back["Status"], "SUCCESS", rolled_back["Reason"])
                self.assertEqual(bedrock.calls, calls)
                # A stack that did set logging, deleted where Bedrock is not available.
                deleted = self.run_handler(
                    self.event("Delete", "bedrock-logs-a", "bedrock-invocation-logging"), bedrock)
                self.assertEqual(deleted["Status"], "SUCCESS", deleted["Reason"])
        # Any other failure on Delete is reported, so it can be retried.
        denied = _Failing(_client_error("AccessDeniedException", "not authorized"))
        answer = self.run_handler(self.event("Delete", "bedrock-logs-a", "bedrock-invocation-logging"), denied)
        self.assertEqual(answer["Status"], "FAILED")
        self.assertIn("not authorized", answer["Reason"])

    def test_a_slow_bedrock_still_gets_cloudformation_its_answer_in_time(self):
        index, puts = self.index, []

        class Slow:
            def get_model_invocation_logging_configuration(self):
                time.sleep(2)
                return {}

            def put_model_invocation_logging_configuration(self, **kwargs):
                puts.append(kwargs)

        # 6 s left: the function keeps 5 s to answer, so Bedrock gets 1 s.
        self.assertEqual(index.ANSWER_MS, 5000)
        started = time.monotonic()
        answer = self.run_handler(self.event("Create", "bedrock-logs-a"), Slow(), _Context(seconds=6))
        elapsed = time.monotonic() - started
        self.assertEqual(answer["Status"], "FAILED")
        self.assertIn("timed out", answer["Reason"])
        self.assertLess(elapsed, 2, "answered before the function's time ran out")
        # Bedrock answering late changes nothing any more.
        time.sleep(2.5)
        self.assertEqual(puts, [])

    def test_the_bedrock_client_gives_up_within_the_functions_time(self):
        template = member_template()
        timeout = template["Resources"]["LoggingConfigFunction"]["Properties"]["Timeout"]
        made = {}

        class Boto3:
            @staticmethod
            def client(name, config):
                made.update(name=name, config=config)
                return self.bedrock

        original, self.index.boto3 = self.index.boto3, Boto3
        try:
            answer = self.run_handler(self.event("Create", "bedrock-logs-a"), client=None)
        finally:
            self.index.boto3 = original
        self.assertEqual(answer["Status"], "SUCCESS", answer["Reason"])
        config = made["config"]
        self.assertEqual(made["name"], "bedrock")
        self.assertEqual((config.connect_timeout, config.read_timeout), (5, 10))
        self.assertEqual(config.retries, {"max_attempts": 2, "mode": "standard"})
        # One call, retried once, fits in the time left after the answer's share.
        attempts = config.retries["max_attempts"]
        self.assertLess(attempts * (config.connect_timeout + config.read_timeout),
                        timeout - self.index.ANSWER_MS / 1000)

if __name__ == "__main__":
    unittest.main()
