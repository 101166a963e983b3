#!/usr/bin/env python3
"""Generate a synthetic CloudTrail archive for `tagwatch replay` benchmarks.

Writes, under OUT:
  archive/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/*.json.gz  (CloudTrail log files,
      {"Records": [...]} like S3 delivery, RECORDS_PER_FILE records each)
  records.jsonl  (the same records, one raw record per line)

Records are realistic in size and shape; SHARE of them are ssm SendCommand / StartSession
calls (some denied), the rest EC2, S3, STS, IAM and Lambda calls. Deterministic (fixed seed).
"""
import argparse
import gzip
import json
import os
import random
import uuid

ACCOUNT = "111122223333"
REGION = "us-east-1"


def identity(rng):
    who = rng.choice(["JuniorEngineer/alice", "LeadEngineer/bob", "ci-deployer/gh-4711", "ops/oncall"])
    role, session = who.split("/")
    return {
        "type": "AssumedRole",
        "principalId": "AROA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(17)) + ":" + session,
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEROLEID1234", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "accountId": ACCOUNT, "userName": role},
            "attributes": {"creationDate": "2026-11-20T08:00:00Z", "mfaAuthenticated": rng.choice(["true", "false"])},
        },
    }


def base(rng, t, source, name):
    return {
        "eventVersion": "1.10",
        "userIdentity": identity(rng),
        "eventTime": t,
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": f"198.51.100.{rng.randint(1, 254)}",
        "userAgent": rng.choice(["aws-cli/2.17.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1", "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux", "console.amazonaws.com"]),
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": f"{source.split('.')[0]}.{REGION}.amazonaws.com"},
    }


def instance(rng):
    return "i-0a1b2c3d4e5f6" + "%04d" % rng.choice([1, 2, 3, 9, 17, 23])


def ssm_record(rng, t):
    if rng.random() < 0.7:
        r = base(rng, t, "ssm.amazonaws.com", "SendCommand")
        ids = sorted({instance(rng) for _ in range(rng.randint(1, 3))})
        r["requestParameters"] = {"instanceIds": ids, "documentName": rng.choice(["AWS-RunShellScript", "AWS-RunPowerShellScript", "Ops-RestartNginx"]), "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS", "interactive": False}
        cmd = str(uuid.UUID(int=rng.getrandbits(128)))
        r["responseElements"] = {"command": {"commandId": cmd, "documentName": r["requestParameters"]["documentName"], "instanceIds": ids, "status": "Pending", "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS", "requestedDateTime": "Nov 20, 2026, 9:08:56 AM", "expiresAfter": "Nov 20, 2026, 11:08:56 AM", "targetCount": len(ids)}}
    else:
        r = base(rng, t, "ssm.amazonaws.com", "StartSession")
        target = instance(rng)
        r["requestParameters"] = {"target": target}
        r["responseElements"] = {"sessionId": "alice-" + "%017x" % rng.getrandbits(68), "tokenValue": "Value hidden due to security reasons.", "streamUrl": f"wss://ssmmessages.{REGION}.amazonaws.com/v1/data-channel/s?role=publish_subscribe"}
    if rng.random() < 0.1:
        r["errorCode"] = "AccessDenied"
        target = r["requestParameters"].get("target") or r["requestParameters"]["instanceIds"][0]
        r["errorMessage"] = f"User: {r['userIdentity']['arn']} is not authorized to perform: {r['eventSource'].split('.')[0]}:{r['eventName']} on resource: arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{target} because no identity-based policy allows the action"
        r["responseElements"] = None
    return r


def other_record(rng, t):
    kind = rng.randrange(5)
    if kind == 0:
        r = base(rng, t, "ec2.amazonaws.com", "CreateTags")
        r["requestParameters"] = {"resourcesSet": {"items": [{"resourceId": instance(rng)}]}, "tagSet": {"items": [{"key": "Owner", "value": "team-%d" % rng.randint(1, 9)}]}}
        r["responseElements"] = {"requestId": r["requestID"], "_return": True}
    elif kind == 1:
        r = base(rng, t, "s3.amazonaws.com", "PutBucketTagging")
        r["requestParameters"] = {"bucketName": "logs-%d" % rng.randint(1, 50), "Host": "s3.amazonaws.com", "tagging": ""}
        r["responseElements"] = None
    elif kind == 2:
        r = base(rng, t, "sts.amazonaws.com", "AssumeRole")
        r["requestParameters"] = {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/ci-deployer", "roleSessionName": "gh-%d" % rng.randint(1000, 9999), "durationSeconds": 3600}
        r["responseElements"] = {"credentials": {"accessKeyId": "ASIAEXAMPLE", "sessionToken": "HIDDEN", "expiration": "Nov 20, 2026, 10:08:56 AM"}, "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:gh", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/gh"}}
    elif kind == 3:
        r = base(rng, t, "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2")
        r["requestParameters"] = {"functionName": "api-%d" % rng.randint(1, 30), "memorySize": 512, "timeout": 30}
        r["responseElements"] = {"functionName": "api", "runtime": "provided.al2023", "state": "Active", "lastUpdateStatus": "InProgress"}
    else:
        r = base(rng, t, "iam.amazonaws.com", "AttachRolePolicy")
        r["requestParameters"] = {"roleName": "ci-deployer", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
        r["responseElements"] = None
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--share", type=float, default=0.02, help="share of SSM SendCommand/StartSession records")
    ap.add_argument("--per-file", type=int, default=5000, help="records per CloudTrail log file")
    ap.add_argument("--out", default="target/bench-archive")
    args = ap.parse_args()
    rng = random.Random(20261120)
    arch = os.path.join(args.out, "archive", "AWSLogs", ACCOUNT, "CloudTrail", REGION, "2026", "11", "20")
    os.makedirs(arch, exist_ok=True)
    lines = open(os.path.join(args.out, "records.jsonl"), "w")
    batch = []
    n_file = 0
    for i in range(args.records):
        secs = 32400 + i * 36000 // args.records  # 09:00 to 19:00
        t = "2026-11-20T%02d:%02d:%02dZ" % (secs // 3600, secs // 60 % 60, secs % 60)
        r = ssm_record(rng, t) if rng.random() < args.share else other_record(rng, t)
        text = json.dumps(r, separators=(",", ":"))
        lines.write(text + "\n")
        batch.append(text)
        if len(batch) == args.per_file or i == args.records - 1:
            name = os.path.join(arch, f"{ACCOUNT}_CloudTrail_{REGION}_20261120T{n_file:05d}Z_bench.json.gz")
            with gzip.open(name, "wt", compresslevel=6) as f:
                f.write('{"Records":[' + ",".join(batch) + "]}")
            batch = []
            n_file += 1
    lines.close()
    print(f"wrote {args.records} records ({args.share:.0%} SSM) to {args.out}/records.jsonl and {n_file} log files")


if __name__ == "__main__":
    main()
