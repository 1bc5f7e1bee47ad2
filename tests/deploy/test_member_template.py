"""The member template's custom resource, run against the AWS emulator: its inline
code is taken from deploy/member-account.yaml as CloudFormation would deploy it, and
it sets, reads back and removes Bedrock's model-invocation logging configuration,
keeps what the account had and gives it back, and answers CloudFormation on success
and on failure, in time.

The emulator (moto 5.2.5) keeps the logging configuration it is given as it is
(cloudWatchConfig, s3Config and the delivery flags), and Delete leaves it empty.

Run by scripts/test with the emulator's AWS_ENDPOINT_URL set.
"""
import base64
import http.server
import json
import os
import threading
import time
import types
import unittest

import boto3
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
        cls.server = http.server.HTTPServer(("127.0.0.1", 0), _Responses)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def setUp(self):
        _Responses.received.clear()
        self.bedrock.delete_model_invocation_logging_configuration()

    def event(self, request_type, bucket, physical_id=None, old_bucket=None, take_over=None):
        """What CloudFormation sends: the physical id on Update and Delete, the old
        properties on Update."""
        event = {
            "RequestType": request_type,
            "ResponseURL": "http://127.0.0.1:%d/response" % self.server.server_port,
            "StackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/member/1",
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

    unittest.main()
