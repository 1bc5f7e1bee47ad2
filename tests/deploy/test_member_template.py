"""The member template's custom resource, run against the AWS emulator: its inline
code is taken from deploy/member-account.yaml as CloudFormation would deploy it, and
it sets, reads back and removes Bedrock's model-invocation logging configuration, and
answers CloudFormation on success and on failure.

Run by scripts/test with the emulator's AWS_ENDPOINT_URL set.
"""
import http.server
import json
import os
import threading
import types
import unittest

import boto3
import yaml

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


def custom_resource_module():
    with open(os.path.join(ROOT, "deploy", "member-account.yaml")) as f:
        template = yaml.load(f, Loader=_Loader)
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

    def event(self, request_type, bucket):
        return {
            "RequestType": request_type,
            "ResponseURL": "http://127.0.0.1:%d/response" % self.server.server_port,
            "StackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/member/1",
            "RequestId": "r-1",
            "LogicalResourceId": "InvocationLogging",
            "ResourceProperties": {"BucketName": bucket},
        }

    def current_bucket(self):
        config = self.bedrock.get_model_invocation_logging_configuration().get("loggingConfig") or {}
        return (config.get("s3Config") or {}).get("bucketName")

    def test_create_sets_and_reads_back_logging_to_the_bucket(self):
        self.index.handler(self.event("Create", "bedrock-logs-a"), None, self.bedrock)
        self.assertEqual(self.current_bucket(), "bedrock-logs-a")
        config = self.bedrock.get_model_invocation_logging_configuration()["loggingConfig"]
        self.assertTrue(config["textDataDeliveryEnabled"])
        self.assertEqual(len(_Responses.received), 1)
        answer = _Responses.received[0]
        self.assertEqual(answer["Status"], "SUCCESS")
        self.assertEqual(answer["Data"], {"BucketName": "bedrock-logs-a"})
        self.assertEqual(answer["PhysicalResourceId"], "bedrock-invocation-logging")

    def test_update_points_logging_at_the_new_bucket(self):
        self.index.handler(self.event("Create", "bedrock-logs-a"), None, self.bedrock)
        self.index.handler(self.event("Update", "bedrock-logs-b"), None, self.bedrock)
        self.assertEqual(self.current_bucket(), "bedrock-logs-b")

    def test_delete_removes_only_its_own_configuration(self):
        self.index.handler(self.event("Create", "bedrock-logs-a"), None, self.bedrock)
        self.index.handler(self.event("Delete", "someone-elses-bucket"), None, self.bedrock)
        self.assertEqual(self.current_bucket(), "bedrock-logs-a", "not ours: kept")
        self.index.handler(self.event("Delete", "bedrock-logs-a"), None, self.bedrock)
        self.assertIsNone(self.current_bucket())
        self.assertEqual([a["Status"] for a in _Responses.received], ["SUCCESS"] * 3)

    def test_a_failure_still_answers_cloudformation(self):
        class Refusing:
            def get_model_invocation_logging_configuration(self):
                return {}

            def put_model_invocation_logging_configuration(self, **kwargs):
                raise RuntimeError("ValidationException: Failed to validate permissions")

        self.index.handler(self.event("Create", "bedrock-logs-a"), None, Refusing())
        self.assertEqual(len(_Responses.received), 1)
        self.assertEqual(_Responses.received[0]["Status"], "FAILED")
        self.assertIn("Failed to validate permissions", _Responses.received[0]["Reason"])


if __name__ == "__main__":
    unittest.main()
