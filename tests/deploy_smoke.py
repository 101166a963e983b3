#!/usr/bin/env python3
"""Deploy smoke test of template.yaml on moto's CloudFormation.

Transforms the SAM template with the aws-sam-translator package (as `sam deploy` would, with
the functions' code in S3), creates the stack on a moto server, waits for CREATE_COMPLETE and
checks what was created: the EventBridge rules' patterns and targets (one rule per finding
detail-type and severity on the findings bus, high to the on-call topic and medium to the
ticket topic), the table's key schema, the functions' environment and roles, the findings bus,
both topics (their KMS key, the inline e-mail subscription), the queues (KMS) and the findings
log group. Then a second stack with a customer key in KmsKeyArn: the queues and topics use it,
the stack makes no key of its own, and the functions' roles may use it. Then
templates/backfill.yaml: the function's settings, timeout and archive permission, the state
machine (name, type, role) and its definition with the stack's values substituted. moto skips alarms, the
bus policy, topic policies and AWS::SNS::Subscription resources, and ignores TTL;
tests/template.rs checks those in the template itself.

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


def role_actions(iam, role):
    """Every action of a role's inline policies, with the resources each is allowed on."""
    actions = {}
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
            r = st["Resource"]
            for action in a if isinstance(a, list) else [a]:
                actions.setdefault(action, []).extend(r if isinstance(r, list) else [r])
    return actions


def deploy(kw, stack, parameters, path="template.yaml"):
    """Transforms a SAM template, creates the stack and waits; returns its resources and outputs."""
    with open(f"{ROOT}/{path}") as f:
        template = yaml.load(f, Loader=CfnLoader)
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = f"s3://{BUCKET}/{name}.zip"
    try:
        cfn_template = transform(template, parameters, ManagedPolicyLoader(boto3.client("iam", **kw)))
    except InvalidDocumentException as e:
        fail("the SAM transform failed: " + "; ".join(str(c) for c in e.causes))

    cfn = boto3.client("cloudformation", **kw)
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    for _ in range(600):
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.1)
    if status != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                   if "FAILED" in e["ResourceStatus"]]
        fail(f"{stack} is {status}: {reasons}")

    created = {r["LogicalResourceId"]: r["PhysicalResourceId"]
               for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
    return created, outputs


def main():
    url = sys.argv[1]
    # The translator resolves pseudo parameters (region, partition) from the environment.
    for k, v in [("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"),
                 ("AWS_SECRET_ACCESS_KEY", "testing")]:
        os.environ[k] = v
    kw = dict(endpoint_url=url, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")

    # The functions' code, as `sam package` uploads it (a stand-in bootstrap: this test checks
    # the stack's wiring, the end-to-end tests run the real binaries).
    s3 = boto3.client("s3", **kw)
    s3.create_bucket(Bucket=BUCKET)
    functions = []
    for path in ["template.yaml", "templates/backfill.yaml"]:
        with open(f"{ROOT}/{path}") as f:
            functions += [name for name, res in yaml.load(f, Loader=CfnLoader)["Resources"].items()
                          if res["Type"] == "AWS::Serverless::Function"]
    for name in functions:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        s3.put_object(Bucket=BUCKET, Key=f"{name}.zip", Body=buf.getvalue())

    parameters = {"AlertEmail": "oncall@example.com", "OrganizationId": "o-a1b2c3d4e5",
                  "AlertHttpsEndpoint": "https://events.example.com/sns",
                  "TicketEmail": "tickets@example.com",
                  "TicketHttpsEndpoint": "https://chat.example.com/sns"}
    created, outputs = deploy(kw, STACK, parameters)

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
        actions = set(role_actions(iam, role))
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
        if any(a.startswith("kms:") for a in actions):
            fail(f"{logical}: KMS actions without KmsKeyArn: {sorted(actions)}")
        # Security Hub export and member accounts are off by default: no setting, no permission.
        if env.get("TAGWATCH_MEMBER_ACCOUNTS") or "sts:AssumeRole" in actions:
            fail(f"{logical}: member accounts read by default")
        if env.get("TAGWATCH_SECURITY_HUB_PRODUCT_ARN"):
            fail(f"{logical}: Security Hub export on by default")
        if any(a.startswith("securityhub:") for a in actions):
            fail(f"{logical}: Security Hub permissions by default: {sorted(actions)}")

    # The rules on the default bus.
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

    # The findings bus: one rule per detail-type and severity, high to on-call, medium to the
    # ticket topic, each a message led by the finding's summary.
    topics = {"high": outputs["OnCallTopicArn"], "medium": outputs["TicketTopicArn"]}
    routes = {}
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        pattern = json.loads(rule["EventPattern"])
        if set(pattern) != {"source", "detail-type", "detail"} or pattern["source"] != ["tagwatch"] \
                or len(pattern["detail-type"]) != 1 or set(pattern["detail"]) != {"severity"} \
                or len(pattern["detail"]["severity"]) != 1:
            fail(f"findings bus rule {rule['Name']} pattern {pattern}")
        route = (pattern["detail-type"][0], pattern["detail"]["severity"][0])
        if route in routes:
            fail(f"two rules for {route}: {routes[route]} and {rule['Name']}")
        routes[route] = rule["Name"]
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        if [t["Arn"] for t in targets] != [topics[route[1]]]:
            fail(f"{rule['Name']} ({route}) targets {targets}")
        transformer = targets[0].get("InputTransformer", {})
        paths = transformer.get("InputPathsMap", {})
        by_path = {v: k for k, v in paths.items()}
        template = transformer.get("InputTemplate", "")
        # A silent source names no run: no console page to link to.
        wanted = ["$.detail.summary"]
        if route[0] != "Tagwatch Silent Source":
            wanted.append("$.detail.links.console")
        for path in wanted:
            if path not in by_path or f"<{by_path[path]}>" not in template:
                fail(f"{rule['Name']}: {path} not in its message: {transformer}")
        if f"<{by_path['$.detail.summary']}>" not in template.splitlines()[0]:
            fail(f"{rule['Name']}: the message does not lead with the summary: {template}")
    detail_types = ["Tagwatch Violation", "Tagwatch AccessDenied Spike", "Tagwatch Unevaluated",
                    "Tagwatch Unlogged Command", "Tagwatch Silent Source"]
    wanted_routes = {(d, s) for d in detail_types for s in topics}
    if set(routes) != wanted_routes:
        fail(f"findings bus routes {sorted(routes)}, wanted {sorted(wanted_routes)}")

    # The topics (the on-call one with its e-mail subscription) under the stack's own key,
    # the queues under the AWS managed SQS key, and the findings log group.
    kms = boto3.client("kms", **kw)
    key = outputs["TopicsKeyArn"]
    if created.get("TopicsKey") is None or not key.endswith(created["TopicsKey"]):
        fail(f"topics key {key}, created {created.get('TopicsKey')}")
    if not kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]:
        fail("the topics' key does not rotate")
    policy = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    # moto keeps the policy CloudFormation gave it as an object; AWS returns text.
    policy = policy if isinstance(policy, dict) else json.loads(policy)
    services = {s["Principal"].get("Service") for s in policy["Statement"]}
    if not {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= services:
        fail(f"the topics' key policy does not let EventBridge and CloudWatch publish: {policy}")
    aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=key)["Aliases"]]
    if aliases != [f"alias/tagwatch/{STACK}/topics"]:
        fail(f"topics key aliases {aliases}")
    sns = boto3.client("sns", **kw)
    for topic in topics.values():
        attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
        if attributes.get("KmsMasterKeyId") != key:
            fail(f"{topic}: KmsMasterKeyId {attributes.get('KmsMasterKeyId')}, wanted {key}")
    subs = sns.list_subscriptions_by_topic(TopicArn=topics["high"])["Subscriptions"]
    if [(s["Protocol"], s["Endpoint"]) for s in subs] != [("email", "oncall@example.com")]:
        fail(f"topic subscriptions {subs}")
    sqs = boto3.client("sqs", **kw)
    for q in ["FailureQueueUrl", "QuarantineQueueUrl"]:
        attrs = sqs.get_queue_attributes(QueueUrl=outputs[q], AttributeNames=["All"])["Attributes"]
        if attrs["MessageRetentionPeriod"] != "1209600" or attrs.get("KmsMasterKeyId") != "alias/aws/sqs":
            fail(f"{q}: {attrs}")
    logs = boto3.client("logs", **kw)
    group = outputs["FindingsLogGroupName"]
    found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    if not found or found[0].get("retentionInDays") != 400:
        fail(f"findings log group {found}")
    print(f"deploy smoke test: {STACK} CREATE_COMPLETE with {len(created)} resources")

    # A second stack with a customer managed key: the queues and topics use it, no key is made,
    # and each function's role may send to the queues under it.
    own = kms.create_key(Description="tagwatch smoke test customer key")["KeyMetadata"]["Arn"]
    stack = f"{STACK}-own-key"
    created, outputs = deploy(kw, stack, {"KmsKeyArn": own, "SecurityHubExport": "Enabled",
                                          "MemberAccounts": "222233334444"})
    if "TopicsKey" in created or outputs["TopicsKeyArn"] != own:
        fail(f"{stack}: made a key of its own ({created.get('TopicsKey')}, {outputs['TopicsKeyArn']})")
    for topic in [outputs["OnCallTopicArn"], outputs["TicketTopicArn"]]:
        attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
        if attributes.get("KmsMasterKeyId") != own:
            fail(f"{stack} {topic}: KmsMasterKeyId {attributes.get('KmsMasterKeyId')}")
    for q in ["FailureQueueUrl", "QuarantineQueueUrl"]:
        attrs = sqs.get_queue_attributes(QueueUrl=outputs[q], AttributeNames=["KmsMasterKeyId"])["Attributes"]
        if attrs.get("KmsMasterKeyId") != own:
            fail(f"{stack} {q}: {attrs}")
    for logical in ["CloudTrailWatcher", "StatusWatcher", "Sweep"]:
        role = lam.get_function(FunctionName=created[logical])["Configuration"]["Role"].rsplit("/", 1)[-1]
        actions = role_actions(iam, role)
        for action in ["kms:GenerateDataKey", "kms:Decrypt"]:
            if actions.get(action) != [own]:
                fail(f"{stack} {logical}: {action} on {actions.get(action)}, wanted [{own}]")
        # With SecurityHubExport=Enabled: the default product's ARN, and the import on it only.
        account = boto3.client("sts", **kw).get_caller_identity()["Account"]
        product = f"arn:aws:securityhub:{kw['region_name']}:{account}:product/{account}/default"
        env = lam.get_function(FunctionName=created[logical])["Configuration"]["Environment"]["Variables"]
        if env.get("TAGWATCH_SECURITY_HUB_PRODUCT_ARN") != product:
            fail(f"{stack} {logical}: TAGWATCH_SECURITY_HUB_PRODUCT_ARN={env.get('TAGWATCH_SECURITY_HUB_PRODUCT_ARN')}")
        if actions.get("securityhub:BatchImportFindings") != [product]:
            fail(f"{stack} {logical}: securityhub:BatchImportFindings on {actions.get('securityhub:BatchImportFindings')}")
        # With MemberAccounts: the scope, and the members' reader role to assume.
        if env.get("TAGWATCH_MEMBER_ACCOUNTS") != "222233334444" or env.get("TAGWATCH_READER_ROLE") != "TagwatchReader":
            fail(f"{stack} {logical}: member settings {env}")
        if actions.get("sts:AssumeRole") != ["arn:aws:iam::*:role/TagwatchReader"]:
            fail(f"{stack} {logical}: sts:AssumeRole on {actions.get('sts:AssumeRole')}")
    print(f"deploy smoke test: {stack} CREATE_COMPLETE with {len(created)} resources")
    backfill(kw)


def backfill(kw):
    """templates/backfill.yaml: the function, its results bucket, and the state machine with
    the stack's values substituted into its definition (the function's ARN, the bucket, the
    numbers parsed back by States.StringToJson)."""
    stack = "tagwatch-backfill"
    created, outputs = deploy(kw, stack, {"ArchiveBucket": "org-trail-logs", "MaxConcurrency": "7",
                                          "DaysPerBatch": "3", "MemberAccounts": "*",
                                          "InventorySource": "s3://snapshots/2026-11/inventory.json"},
                              "templates/backfill.yaml")
    lam = boto3.client("lambda", **kw)
    function = lam.get_function(FunctionName=created["Backfill"])["Configuration"]
    env = function["Environment"]["Variables"]
    results = outputs["ResultsBucketName"]
    if env.get("TAGWATCH_RESULTS_BUCKET") != results or env.get("TAGWATCH_MEMBER_ACCOUNTS") != "*":
        fail(f"{stack}: function environment {env}")
    if function["Timeout"] != 900:
        fail(f"{stack}: timeout {function['Timeout']}")
    actions = role_actions(boto3.client("iam", **kw), function["Role"].rsplit("/", 1)[-1])
    if "arn:aws:s3:::org-trail-logs/*" not in actions.get("s3:GetObject", []):
        fail(f"{stack}: s3:GetObject on {actions.get('s3:GetObject')}")
    # The inventory: in the environment, and readable (that object only).
    if env.get("TAGWATCH_INVENTORY") != "s3://snapshots/2026-11/inventory.json":
        fail(f"{stack}: TAGWATCH_INVENTORY={env.get('TAGWATCH_INVENTORY')}")
    if "arn:aws:s3:::snapshots/2026-11/inventory.json" not in actions.get("s3:GetObject", []):
        fail(f"{stack}: s3:GetObject on {actions.get('s3:GetObject')}")
    sfn = boto3.client("stepfunctions", **kw)
    machine = sfn.describe_state_machine(stateMachineArn=outputs["StateMachineArn"])
    if machine["name"] != f"{stack}-backfill" or machine["type"] != "STANDARD":
        fail(f"{stack}: state machine {machine['name']} ({machine['type']})")
    if not machine["roleArn"].rsplit("/", 1)[-1].startswith(f"{stack}-StateMachineRole"):
        fail(f"{stack}: state machine role {machine['roleArn']}")
    # moto's CloudFormation keeps a definition only from DefinitionString (this one is an object:
    # moto stores ""), so the substitution CloudFormation makes is made here, with what the
    # stack created: no placeholder may be left, and the numbers must parse back as numbers.
    with open(f"{ROOT}/templates/backfill.yaml") as f:
        props = yaml.load(f, Loader=CfnLoader)["Resources"]["StateMachine"]["Properties"]
    values = {"BackfillArn": function["FunctionArn"], "ResultsBucket": results,
              "MaxConcurrency": "7", "DaysPerBatch": "3", "ToleratedFailurePercentage": "0"}
    if set(props["DefinitionSubstitutions"]) != set(values):
        fail(f"{stack}: substitutions {sorted(props['DefinitionSubstitutions'])}")
    text = json.dumps(props["Definition"])
    for k, v in values.items():
        text = text.replace("${" + k + "}", v)
    if "${" in text:
        fail(f"{stack}: a placeholder left in the definition")
    states = json.loads(text)["States"]
    for key, value in states["Settings"]["Parameters"].items():
        number = json.loads(value.removeprefix("States.StringToJson('").removesuffix("')"))
        if not isinstance(number, int):
            fail(f"{stack}: Settings {key} = {value}")
    if states["Days"]["ResultWriter"]["Parameters"]["Bucket"] != results:
        fail(f"{stack}: ResultWriter {states['Days']['ResultWriter']}")
    print(f"deploy smoke test: {stack} CREATE_COMPLETE with {len(created)} resources")


if __name__ == "__main__":
    main()
