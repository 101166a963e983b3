#!/usr/bin/env python3
"""Deploy smoke test of template.yaml on moto's CloudFormation.

Transforms the SAM template with the aws-sam-translator package (as `sam deploy` would, with
the functions' code in S3), creates the stack on a moto server, waits for CREATE_COMPLETE and
checks what was created: the EventBridge rules' patterns and targets, the table's key schema,
the functions' environment and roles, the findings bus, the on-call topic, the queues and the
findings log group. moto skips alarms and ignores TTL; tests/template.rs checks those in the
template itself.

Usage: python3 tests/deploy_smoke.py MOTO_URL   (tests/template.rs runs it against its own moto)
"""

import ast
import io
import json
import os
import sys
import time
import urllib.parse
import zipfile

import boto3
import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

ROOT = __file__.rsplit("/tests/", 1)[0]
STACK = "tagwatch"
BUCKET = "tagwatch-artifacts"


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags, turned into their long forms."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def fail(message):
    print(f"deploy smoke test: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    url = sys.argv[1]
    # The translator resolves pseudo parameters (region, partition) from the environment.
    for k, v in [("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                 ("AWS_SECRET_ACCESS_KEY", "testing")]:
        os.environ[k] = v
    kw = dict(endpoint_url=url, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    with open(f"{ROOT}/template.yaml") as f:
        template = yaml.load(f, Loader=CfnLoader)

    # The functions' code, as `sam package` uploads it (a stand-in bootstrap: this test checks
    # the stack's wiring, the end-to-end tests run the real binaries).
    s3 = boto3.client("s3", **kw)
    s3.create_bucket(Bucket=BUCKET)
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("bootstrap", "#!/bin/sh\n")
            key = f"{name}.zip"
            s3.put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue())
            res["Properties"]["CodeUri"] = f"s3://{BUCKET}/{key}"

    parameters = {"AlertEmail": "oncall@example.com", "OrganizationId": "o-a1b2c3d4e5"}
    try:
        cfn_template = transform(template, parameters, ManagedPolicyLoader(boto3.client("iam", **kw)))
    except InvalidDocumentException as e:
        fail("the SAM transform failed: " + "; ".join(str(c) for c in e.causes))

    cfn = boto3.client("cloudformation", **kw)
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    for _ in range(600):
        status = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.1)
    if status != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                   if "FAILED" in e["ResourceStatus"]]
        fail(f"stack is {status}: {reasons}")

    created = {r["LogicalResourceId"]: r["PhysicalResourceId"]
               for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0].get("Outputs", [])}

    # The table.
    ddb = boto3.client("dynamodb", **kw)
    table = ddb.describe_table(TableName=created["StateTable"])["Table"]
    keys = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
    if keys != [("pk", "HASH"), ("sk", "RANGE")]:
        fail(f"table key schema {keys}")
    if outputs.get("StateTableName") != created["StateTable"]:
        fail(f"StateTableName output {outputs.get('StateTableName')}")

    # The functions: environment and roles.
    lam = boto3.client("lambda", **kw)
    iam = boto3.client("iam", **kw)
    for logical in ["CloudTrailWatcher", "StatusWatcher", "Sweep"]:
        fn = lam.get_function(FunctionName=created[logical])["Configuration"]
        env = fn["Environment"]["Variables"]
        if env.get("TAGWATCH_TABLE") != created["StateTable"]:
            fail(f"{logical}: TAGWATCH_TABLE={env.get('TAGWATCH_TABLE')}")
        if env.get("TAGWATCH_INTENT") != "ssm:/tagwatch/intent":
            fail(f"{logical}: TAGWATCH_INTENT={env.get('TAGWATCH_INTENT')}")
        for var in ["TAGWATCH_FINDINGS_LOG_GROUP", "TAGWATCH_FINDINGS_BUS", "TAGWATCH_QUARANTINE_QUEUE_URL"]:
            if not env.get(var):
                fail(f"{logical}: {var} is empty")
        if fn["Runtime"] != "provided.al2023" or fn["Handler"] != "bootstrap":
            fail(f"{logical}: runtime {fn['Runtime']} handler {fn['Handler']}")
        role = fn["Role"].rsplit("/", 1)[-1]
        actions = set()
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            if isinstance(doc, str):
                # moto hands back the document as text (JSON, or the repr of a dict).
                text = urllib.parse.unquote(doc)
                try:
                    doc = json.loads(text)
                except json.JSONDecodeError:
                    doc = ast.literal_eval(text)
            for st in doc["Statement"]:
                a = st["Action"]
                actions.update(a if isinstance(a, list) else [a])
        wanted = {"logs:PutLogEvents", "events:PutEvents"}
        # Every function decides with live tags (the sweep evaluates runs whose record raced
        # their park) and batches its DynamoDB writes; none scans the table.
        wanted |= {"ec2:DescribeTags", "ec2:DescribeInstances", "ssm:ListTagsForResource", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem"}
        if "dynamodb:Scan" in actions:
            fail(f"{logical}: role {role} may scan the table")
        if not wanted <= actions:
            fail(f"{logical}: role {role} lacks {sorted(wanted - actions)} (has {sorted(actions)})")
        if any("*" in a for a in actions):
            fail(f"{logical}: wildcard action in {sorted(actions)}")

    # The rules on the default bus and the alert rule on the findings bus.
    events = boto3.client("events", **kw)
    bus = outputs["FindingsBusName"]
    events.describe_event_bus(Name=bus)
    patterns = {}
    for r in events.list_rules()["Rules"]:
        if "EventPattern" in r:
            patterns[r["Name"]] = json.loads(r["EventPattern"])
    ssm_calls = [p for p in patterns.values() if p.get("detail", {}).get("eventName")]
    if len(ssm_calls) != 1 or ssm_calls[0]["detail"]["eventName"] != ["SendCommand", "StartSession", "ResumeSession", "TerminateSession",
        "CreateAssociation", "CreateAssociationBatch", "UpdateAssociation",
        "RegisterTaskWithMaintenanceWindow", "UpdateMaintenanceWindowTask",
        "StartAutomationExecution"] \
            or ssm_calls[0]["detail-type"] != ["AWS API Call via CloudTrail"]:
        fail(f"CloudTrail rule pattern: {ssm_calls}")
    status = [p for p in patterns.values()
              if "EC2 Command Invocation Status-change Notification" in p.get("detail-type", [])]
    if len(status) != 1:
        fail(f"status rule pattern: {patterns}")
    alert_rules = events.list_rules(EventBusName=bus)["Rules"]
    if len(alert_rules) != 1:
        fail(f"rules on the findings bus: {alert_rules}")
    alert = alert_rules[0]
    if json.loads(alert["EventPattern"]) != {
            "source": ["tagwatch"], "detail-type": ["Tagwatch Violation", "Tagwatch AccessDenied Spike"]}:
        fail(f"alert rule pattern {alert['EventPattern']}")
    targets = events.list_targets_by_rule(Rule=alert["Name"], EventBusName=bus)["Targets"]
    topic = outputs["OnCallTopicArn"]
    if [t["Arn"] for t in targets] != [topic] or "InputTransformer" not in targets[0]:
        fail(f"alert targets {targets}")

    # The topic (with the e-mail subscription), queues and findings log group.
    sns = boto3.client("sns", **kw)
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    if [(s["Protocol"], s["Endpoint"]) for s in subs] != [("email", "oncall@example.com")]:
        fail(f"topic subscriptions {subs}")
    sqs = boto3.client("sqs", **kw)
    for q in ["FailureQueueUrl", "QuarantineQueueUrl"]:
        attrs = sqs.get_queue_attributes(QueueUrl=outputs[q], AttributeNames=["MessageRetentionPeriod"])
        if attrs["Attributes"]["MessageRetentionPeriod"] != "1209600":
            fail(f"{q}: retention {attrs}")
    logs = boto3.client("logs", **kw)
    group = outputs["FindingsLogGroupName"]
    found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    if not found or found[0].get("retentionInDays") != 400:
        fail(f"findings log group {found}")
    print(f"deploy smoke test: CREATE_COMPLETE with {len(created)} resources")


if __name__ == "__main__":
    main()
