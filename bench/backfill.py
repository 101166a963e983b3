#!/usr/bin/env python3
"""Backfill benchmark: the release `tagwatch-backfill` binary replays one day folder of the
generated CloudTrail archive (bench/gen_cloudtrail.py: 1,000,000 records by default, about
100 MB of .json.gz) from a local S3 (moto's server), under a minimal Lambda Runtime API served
by this script, the way one Distributed Map child runs it: a plan request, then one batch
holding the day. Prints the batch's wall time, the function's peak memory and CPU time, the
throughput in compressed MB/s and records/s, and Lambda GB-seconds per 100 MB of .json.gz at
the memory sizes where Lambda gives a whole vCPU (1,769 MB) and the template's default
(1,024 MB, 0.58 vCPU).

    python3 bench/backfill.py [ARCHIVE_DIR]

Needs moto's server and boto3 (target/test-venv, made by `cargo xtask setup`) and the release
binary (`cargo build --release -p backfill`). Tags are looked up live in moto (the archive's
instances are not tagged there: their runs are unevaluated, as a real backfill's unknown
instances are), so every EC2 and SSM lookup a real run makes is made here too.
"""
import http.server
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/bench-archive-1000000/archive")
BINARY = os.path.join(ROOT, "target/release/tagwatch-backfill")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """The Lambda Runtime API's three calls: next invocation, its response, its error."""

    events = queue.Queue()
    answers = queue.Queue()

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        request_id, body = self.events.get()
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:111122223333:function:tagwatch-backfill")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        ok = self.path.endswith("/response")
        self.answers.put((ok, json.loads(body or b"null")))


def invoke(event, request_id):
    RuntimeApi.events.put((request_id, event))
    ok, answer = RuntimeApi.answers.get(timeout=1800)
    if not ok:
        raise SystemExit(f"invocation failed: {answer}")
    return answer


def main():
    import boto3

    files = []
    for dirpath, _, names in os.walk(ARCHIVE):
        files += [os.path.join(dirpath, n) for n in names if n.endswith(".json.gz")]
    files.sort()
    total = sum(os.path.getsize(f) for f in files)
    moto_port = free_port()
    moto = subprocess.Popen(["moto_server", "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(moto_port)
        url = f"http://127.0.0.1:{moto_port}"
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        s3 = boto3.client("s3", **kw)
        s3.create_bucket(Bucket="trail")
        s3.create_bucket(Bucket="results")
        for f in files:
            key = os.path.relpath(f, os.path.dirname(ARCHIVE)).replace(os.sep, "/")
            key = key[key.index("AWSLogs/"):]
            s3.upload_file(f, "trail", key)
        boto3.client("logs", **kw).create_log_group(logGroupName="/tagwatch/findings")
        api_port = free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", api_port), RuntimeApi)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api_port}",
            "AWS_LAMBDA_FUNCTION_NAME": "tagwatch-backfill",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
            "AWS_LAMBDA_FUNCTION_VERSION": "1",
            "AWS_ENDPOINT_URL": url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "TAGWATCH_INTENT": os.path.join(ROOT, "examples/intent.json"),
            "TAGWATCH_FINDINGS_LOG_GROUP": "/tagwatch/findings",
            "TAGWATCH_RESULTS_BUCKET": "results",
            "TAGWATCH_LOG_LEVEL": "WARN",
        }
        started = time.time()
        function = subprocess.Popen([BINARY], env=env, stdout=subprocess.DEVNULL)
        plan = invoke({"plan": {"bucket": "trail", "prefix": "AWSLogs/"}, "run": "bench"}, "plan-1")
        items = json.loads(s3.get_object(Bucket="results", Key=plan["key"])["Body"].read())
        t0 = time.time()
        out = invoke({"Items": items, "BatchInput": {"run": "bench"}}, "batch-1")
        wall = time.time() - t0
        with open(f"/proc/{function.pid}/status") as status:
            peak_kb = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
        with open(f"/proc/{function.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        function.terminate()
        function.wait()
    finally:
        moto.terminate()
        moto.wait()
    totals = out["totals"]
    mb = total / 1e6
    print(f"archive: {len(files)} .json.gz objects, {mb:.1f} MB, {totals['records']} records, {len(items)} day folder(s)")
    print(f"batch: {wall:.2f} s wall ({mb / wall:.1f} MB/s of .json.gz, {totals['records'] / wall:,.0f} records/s)")
    print(f"function: peak memory {peak_kb / 1024:.0f} MB, CPU {cpu_s:.2f} s (plan and batch)")
    per_100mb = wall * 100 / mb
    print(f"per 100 MB of .json.gz: {per_100mb:.2f} s on one core here")
    print(f"  Lambda 1769 MB (1 vCPU): {1.769 * per_100mb:.2f} GB-s; 1024 MB (0.58 vCPU): {1.024 * per_100mb / 0.579:.2f} GB-s")
    print(f"findings: { {k: v for k, v in totals.items() if k not in ('records', 'objects', 'bytes', 'malformed')} }, malformed {totals['malformed']}")
    print(f"cold start to the end of the batch: {time.time() - started:.2f} s")


if __name__ == "__main__":
    main()
