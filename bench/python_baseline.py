#!/usr/bin/env python3
"""The comparison point for `tagwatch replay`: a plain Python loop that only json.loads every
record (JSON lines, or every record of the .json.gz CloudTrail log files) and keeps the SSM ones.
"""
import gzip
import json
import os
import sys
import time


def main():
    path = sys.argv[1]
    started = time.perf_counter()
    n = ssm = 0
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for name in sorted(files):
                if name.endswith(".json.gz"):
                    with gzip.open(os.path.join(root, name), "rt") as f:
                        for r in json.load(f)["Records"]:
                            n += 1
                            ssm += r.get("eventSource") == "ssm.amazonaws.com"
    else:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                n += 1
                ssm += r.get("eventSource") == "ssm.amazonaws.com"
    dt = time.perf_counter() - started
    print(f"python json.loads: {n} records ({ssm} SSM) in {dt:.2f} s = {n / dt:,.0f} records/s")


if __name__ == "__main__":
    main()
