#!/usr/bin/env python3
"""Measures a tagwatch function binary the way Lambda runs it.

Starts moto's server, provisions what the functions need (table, log group, bus, intent in SSM,
instance tags), then plays the Lambda Runtime API itself (so the clock is ours) and runs the
binary against it:

- cold start: process spawn to the first `GET /runtime/invocation/next`;
- warm: N invocations of the fixture events, the process's CPU time (utime + stime from
  /proc) per event, which includes the SDK's work for the AWS calls to moto;
- peak RSS: VmHWM from /proc after the run.

Usage: python3 bench/lambda.py BOOTSTRAP [N] [EVENT_FILE]
  (EVENT_FILE defaults to events/cloudtrail-sendcommand-instanceids.json; each invocation gets
  its own event id, so every one is a first delivery)
Needs moto (pip install 'moto[server]'); prints one JSON line.
"""

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def provision(url):
    kw = dict(endpoint_url=url, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    boto3.client("dynamodb", **kw).create_table(
        TableName="tagwatch", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}])
    boto3.client("logs", **kw).create_log_group(logGroupName="/tagwatch/findings")
    boto3.client("events", **kw).create_event_bus(Name="tagwatch-findings")
    ssm = boto3.client("ssm", **kw)
    for name, path in [("/tagwatch/intent", "examples/intent.json"),
                       ("/tagwatch/policies/junior-engineers.json", "examples/policies/junior-engineers.json"),
                       ("/tagwatch/policies/lead-engineers.json", "examples/policies/lead-engineers.json")]:
        with open(os.path.join(ROOT, path)) as f:
            ssm.put_parameter(Name=name, Type="String", Value=f.read())
    ec2 = boto3.client("ec2", **kw)
    with open(os.path.join(ROOT, "examples/inventory.json")) as f:
        for iid, tags in json.load(f).items():
            if iid.startswith("i-"):
                ec2.create_tags(Resources=[iid], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


class Runtime:
    """The Runtime API: hands out queued events, collects responses."""

    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.first_poll = None
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if runtime.first_poll is None:
                    runtime.first_poll = time.perf_counter()
                body = runtime.events.get()
                rid = str(uuid.uuid4())
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", rid)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:111122223333:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(n)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                runtime.results.put((self.path.rsplit("/", 1)[-1], data))

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    event_file = sys.argv[3] if len(sys.argv) > 3 else "events/cloudtrail-sendcommand-instanceids.json"
    moto_port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(moto_port)
        url = f"http://127.0.0.1:{moto_port}"
        provision(url)
        rt = Runtime()
        env = dict(os.environ,
                   AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{rt.port}",
                   AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
                   AWS_LAMBDA_FUNCTION_VERSION="1",
                   AWS_ENDPOINT_URL=url, AWS_REGION="us-east-1",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   TAGWATCH_INTENT=os.environ.get("BENCH_INTENT", "ssm:/tagwatch/intent"),
                   TAGWATCH_TABLE="tagwatch",
                   TAGWATCH_FINDINGS_LOG_GROUP="/tagwatch/findings",
                   TAGWATCH_FINDINGS_BUS="tagwatch-findings", TAGWATCH_LOG_LEVEL="WARN")
        started = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL)
        # Cold start ends at the first poll; hand out nothing until it is measured.
        while rt.first_poll is None:
            if proc.poll() is not None:
                raise SystemExit(f"{binary} exited with {proc.returncode} during its cold start")
            time.sleep(0.0005)
        cold_ms = (rt.first_poll - started) * 1000
        with open(os.path.join(ROOT, event_file)) as f:
            template = json.load(f)
        cpu_before = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        errors = 0
        for i in range(n):
            e = dict(template)
            e["id"] = f"bench-{i}"
            if "eventID" in template.get("detail", {}):
                e["detail"] = dict(template["detail"], eventID=f"bench-{i}")
            rt.events.put(json.dumps(e).encode())
            path, data = rt.results.get(timeout=60)
            errors += path == "error"
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid) - cpu_before
        rss = peak_rss_kib(proc.pid)
        proc.kill()
        print(json.dumps({
            "binary": binary, "event": event_file, "events": n, "errors": errors,
            "cold_start_ms": round(cold_ms, 1),
            "cpu_ms_per_event_with_sdk": round(cpu * 1000 / n, 3),
            "wall_ms_per_event_with_moto": round(wall * 1000 / n, 2),
            "peak_rss_mib": round(rss / 1024, 1),
        }))
    finally:
        moto.kill()


if __name__ == "__main__":
    main()
