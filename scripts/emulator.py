"""The AWS emulator the tests run against: moto's server on loopback, handling one
request at a time.

Real DynamoDB applies each conditional UpdateItem atomically. moto's threaded server
can interleave two requests that update the same item and lose one of them, which
would make the concurrency tests fail for the emulator's sake; serialising requests
restores the per-request atomicity the code relies on.

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

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def one_at_a_time(environ, start_response):
    with lock:
        return list(app(environ, start_response))


run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)
