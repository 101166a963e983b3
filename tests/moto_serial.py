"""moto's server, answering one request at a time.

DynamoDB applies a conditional write atomically per item ("Condition expressions", Amazon
DynamoDB Developer Guide): of two writers racing on one item, exactly one condition holds.
moto's threaded server checks a condition and writes the item in two steps, so two requests
arriving together can both pass. tagwatch's concurrency tests race real function processes on
one table, so this wrapper serialises moto's handling of requests (connections are still
accepted concurrently); every call then sees the writes of those before it, as with DynamoDB.

Usage: python3 tests/moto_serial.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        return list(app(environ, start_response))


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(
        host,
        port,
        serialised,
        threaded=True,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )
