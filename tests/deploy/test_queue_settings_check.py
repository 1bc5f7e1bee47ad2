"""The detector template's queue settings check (QueueSettingsCheck), its inline code
taken from template.yaml as CloudFormation would deploy it: it fails the deployment,
naming the settings, for queue settings that cannot work together, and lets every
other combination and every Delete through. No emulator needed.
"""
import http.server
import json
import os
import threading
import types
import unittest

import yaml

from test_member_template import ROOT, _Loader, _Responses


def detector_template():
    with open(os.path.join(ROOT, "template.yaml")) as f:
        return yaml.load(f, Loader=_Loader)


class QueueSettingsCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = detector_template()
        resources = cls.template["Resources"]
        code = resources["QueueSettingsCheckFunction"]["Properties"]["Code"]["ZipFile"]
        assert len(code) <= 4096, "inline Lambda code is limited to 4096 characters"
        cls.check = types.ModuleType("index")
        exec(compile(code, "index.py", "exec"), cls.check.__dict__)
        cls.server = http.server.HTTPServer(("127.0.0.1", 0), _Responses)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def defaults(self):
        """The template's defaults for the settings the check is given."""
        props = self.template["Resources"]["QueueSettingsCheck"]["Properties"]
        parameters = self.template["Parameters"]
        return {name: str(parameters[ref]["Default"]) for name, ref in props.items() if name != "ServiceToken"}

    def answer(self, request_type="Create", **settings):
        props = dict(self.defaults(), ServiceToken="arn:aws:lambda:us-east-1:111122223333:function:check")
        props.update({k: str(v) for k, v in settings.items()})
        _Responses.received.clear()
        self.check.handler({
            "RequestType": request_type,
            "ResponseURL": "http://127.0.0.1:%d/response" % self.server.server_port,
            "StackId": "arn:aws:cloudformation:us-east-1:111122223333:stack/detector/1",
            "RequestId": "r-1",
            "LogicalResourceId": "QueueSettingsCheck",
            "PhysicalResourceId": "queue-settings-check",
            "ResourceProperties": props,
        }, None)
        self.assertEqual(len(_Responses.received), 1, "exactly one answer")
        return _Responses.received[0]

    def test_it_is_given_each_setting_under_its_parameters_name(self):
        props = self.template["Resources"]["QueueSettingsCheck"]["Properties"]
        self.assertEqual(
            {k: v for k, v in props.items() if k != "ServiceToken"},
            {name: name for name in ("FunctionTimeout", "ReservedConcurrency", "QueueMaximumConcurrency",
                                     "QueueVisibilityTimeoutSeconds", "QueueBatchingWindowSeconds",
                                     "QueueBatchSize")})

    def test_the_defaults_work_together(self):
        answer = self.answer()
        self.assertEqual(answer["Status"], "SUCCESS", answer["Reason"])

    def test_reserved_concurrency_below_the_queues_maximum_concurrency_is_refused(self):
        answer = self.answer(ReservedConcurrency=3, QueueMaximumConcurrency=5)
        self.assertEqual(answer["Status"], "FAILED")
        self.assertIn("ReservedConcurrency 3 is below QueueMaximumConcurrency 5", answer["Reason"])
        for reserved in (0, 5, 50):  # none, equal, above
            answer = self.answer(ReservedConcurrency=reserved, QueueMaximumConcurrency=5)
            self.assertEqual(answer["Status"], "SUCCESS", (reserved, answer["Reason"]))

    def test_a_visibility_timeout_shorter_than_the_function_allows_is_refused(self):
        for visibility in (60, 299, 1809):  # below the timeout, then below 6 x 300 + 10
            answer = self.answer(QueueVisibilityTimeoutSeconds=visibility)
            self.assertEqual(answer["Status"], "FAILED", visibility)
            self.assertIn("QueueVisibilityTimeoutSeconds %d is below" % visibility, answer["Reason"])
            self.assertIn("= 1810", answer["Reason"])
        answer = self.answer(QueueVisibilityTimeoutSeconds=1810)
        self.assertEqual(answer["Status"], "SUCCESS", answer["Reason"])
        answer = self.answer(FunctionTimeout=60, QueueBatchingWindowSeconds=0, QueueVisibilityTimeoutSeconds=360)
        self.assertEqual(answer["Status"], "SUCCESS", answer["Reason"])

    def test_a_batch_above_ten_without_a_batching_window_is_refused(self):
        answer = self.answer(QueueBatchSize=11, QueueBatchingWindowSeconds=0)
        self.assertEqual(answer["Status"], "FAILED")
        self.assertIn("QueueBatchSize 11 above 10", answer["Reason"])
        answer = self.answer(QueueBatchSize=10, QueueBatchingWindowSeconds=0)
        self.assertEqual(answer["Status"], "SUCCESS", answer["Reason"])
        answer = self.answer(QueueBatchSize=100, QueueBatchingWindowSeconds=1)
        self.assertEqual(answer["Status"], "SUCCESS", answer["Reason"])

    def test_every_problem_is_named_at_once(self):
        answer = self.answer(ReservedConcurrency=2, QueueVisibilityTimeoutSeconds=60)
        self.assertEqual(answer["Status"], "FAILED")
        self.assertIn("ReservedConcurrency", answer["Reason"])
        self.assertIn("QueueVisibilityTimeoutSeconds", answer["Reason"])

    def test_delete_always_succeeds(self):
        # A stack whose Create was refused must still roll back and delete.
        answer = self.answer("Delete", ReservedConcurrency=2, QueueVisibilityTimeoutSeconds=60)
        self.assertEqual(answer["Status"], "SUCCESS")

    def test_a_malformed_request_still_answers(self):
        answer = self.answer(ReservedConcurrency="not a number")
        self.assertEqual(answer["Status"], "FAILED")
        self.assertIn("could not check", answer["Reason"])


if __name__ == "__main__":
    unittest.main()
