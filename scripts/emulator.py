"""The AWS emulator the tests run against: moto's server on loopback, handling one
request at a time, with one gap in moto filled.

Real DynamoDB applies each conditional UpdateItem atomically. moto's threaded server
can interleave two requests that update the same item and lose one of them, which
would make the concurrency tests fail for the emulator's sake; serialising requests
restores the per-request atomicity the code relies on.

moto 5.2.5 stores a bucket's EventBridgeConfiguration (and sends S3 events to
EventBridge) but leaves it out of GetBucketNotificationConfiguration, where AWS
returns it, and answers a bucket without notifications with an element the AWS SDKs
do not expect; the response below is AWS's, so reading a configuration back shows
what was written.

CloudFormation tags every bucket a stack creates with `aws:cloudformation:stack-name`,
`aws:cloudformation:stack-id` and `aws:cloudformation:logical-id`, tags no requester
may set; moto's CloudFormation sets none. Buckets moto creates from a stack get them
here, so a test can tell a stack-managed bucket as a user's tools would.

usage: python scripts/emulator.py HOST PORT
"""
import os
import sys
import threading

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))

from werkzeug.serving import run_simple  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.responses import S3Response  # noqa: E402
from moto.core.common_types import TYPE_RESPONSE  # noqa: E402,F401

_get_bucket_notification = S3Response.get_bucket_notification


EMPTY = ('<?xml version="1.0" encoding="UTF-8"?>'
         '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
         "%s</NotificationConfiguration>")
EVENTBRIDGE = "<EventBridgeConfiguration></EventBridgeConfiguration>"


def get_bucket_notification(self):
    config = self.backend.get_bucket_notification_configuration(self.bucket_name)
    status, headers, body = _get_bucket_notification(self)
    text = body.decode() if isinstance(body, bytes) else body
    eventbridge = bool(config) and config.event_bridge is not None
    closing = "</NotificationConfiguration>"
    if closing not in text:
        text = EMPTY % (EVENTBRIDGE if eventbridge else "")
    elif eventbridge and "<EventBridgeConfiguration" not in text:
        text = text.replace(closing, EVENTBRIDGE + closing)
    return status, headers, text


S3Response.get_bucket_notification = get_bucket_notification

from moto.s3.models import FakeBucket, s3_backends  # noqa: E402
from moto.utilities.utils import get_partition  # noqa: E402

_create_from_cloudformation = FakeBucket.create_from_cloudformation_json.__func__


def create_with_stack_tags(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    bucket = _create_from_cloudformation(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    )
    backend = s3_backends[account_id][get_partition(region_name)]
    tags = {t["Key"]: t["Value"] for t in backend.get_bucket_tagging(bucket.name)["Tags"]}
    stack_id = kwargs.get("StackId", "")
    tags.update({
        "aws:cloudformation:stack-name": stack_id.split("/")[1] if "/" in stack_id else "",
        "aws:cloudformation:stack-id": stack_id,
        "aws:cloudformation:logical-id": kwargs.get("LogicalId", ""),
    })
    backend.put_bucket_tagging(bucket.name, tags)
    return bucket


FakeBucket.create_from_cloudformation_json = classmethod(create_with_stack_tags)

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def one_at_a_time(environ, start_response):
    with lock:
        return list(app(environ, start_response))


run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)
