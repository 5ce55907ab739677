#!/usr/bin/env python3
"""Deploy / delete CloudFormation stacks on LocalStack (run with .localstack/venv/bin/python).

    provision.py [--endpoint URL] deploy --template infra/data.yaml STACK [Key=Value ...]
        create or update STACK, wait, print one NAME=value line per output
        (output key CamelCase -> UPPER_SNAKE_CASE: EventsQueueUrl -> EVENTS_QUEUE_URL)
    provision.py [--endpoint URL] destroy STACK
    provision.py [--endpoint URL] ping      check that SQS, DynamoDB and CloudFormation answer

Normally called through scripts/localstack.sh (provision / destroy / start).
Endpoint default: http://127.0.0.1:$LOCALSTACK_PORT (45670); region us-east-1, credentials test/test.
Only NAME=value lines go to stdout; progress and errors go to stderr.
"""

import argparse
import os
import re
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REGION = "us-east-1"
TIMEOUT_S = 300

FAILED_STATES = {
    "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED",
}


def err(msg):
    print(f"provision: {msg}", file=sys.stderr)


def fail(msg, code=1):
    err(msg)
    sys.exit(code)


def client(endpoint, service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60),
    )


def upper_snake(key):
    """EventsQueueUrl -> EVENTS_QUEUE_URL, ApiKeysTableArn -> API_KEYS_TABLE_ARN, SQSUrl -> SQS_URL."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", key)
    return re.sub(r"[^A-Za-z0-9]+", "_", s).upper()


def describe(cfn, stack):
    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise


def failure_reasons(cfn, stack):
    try:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    except ClientError:
        return []
    return [
        f"  {e.get('LogicalResourceId')} {e.get('ResourceStatus')}: {e.get('ResourceStatusReason')}"
        for e in events
        if e.get("ResourceStatus", "").endswith("FAILED")
    ]


def wait(cfn, stack, allow_missing=False):
    """Poll until the stack leaves *_IN_PROGRESS. Returns the final stack (None if gone)."""
    deadline = time.monotonic() + TIMEOUT_S
    delay = 0.2
    while True:
        st = describe(cfn, stack)
        if st is None:
            if allow_missing:
                return None
            fail(f"stack {stack} disappeared")
        status = st["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return st
        if time.monotonic() > deadline:
            fail(f"timeout waiting for {stack} ({status})")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def parse_params(pairs):
    params = []
    for p in pairs:
        if "=" not in p:
            fail(f"parameter must be Key=Value: {p!r}", 2)
        k, v = p.split("=", 1)
        params.append({"ParameterKey": k, "ParameterValue": v})
    return params


def deploy(endpoint, template, stack, pairs):
    cfn = client(endpoint, "cloudformation")
    with open(template, encoding="utf-8") as f:
        body = f.read()
    params = parse_params(pairs)
    # LocalStack silently ignores unknown parameters (AWS rejects them): check here.
    known = {p["ParameterKey"] for p in cfn.validate_template(TemplateBody=body).get("Parameters", [])}
    unknown = sorted({p["ParameterKey"] for p in params} - known)
    if unknown:
        fail(f"unknown parameter(s) {', '.join(unknown)}; {template} has: {', '.join(sorted(known))}", 2)
    existing = describe(cfn, stack)
    if existing and existing["StackStatus"] in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"):
        # A failed create cannot be updated: start over.
        err(f"stack {stack} is {existing['StackStatus']}: deleting it first")
        cfn.delete_stack(StackName=stack)
        wait(cfn, stack, allow_missing=True)
        existing = None
    if existing and existing["StackStatus"].endswith("_IN_PROGRESS"):
        existing = wait(cfn, stack)
    if existing and existing["StackStatus"] == "DELETE_COMPLETE":
        existing = None

    if existing is None:
        err(f"creating stack {stack}")
        cfn.create_stack(StackName=stack, TemplateBody=body, Parameters=params)
        want = "CREATE_COMPLETE"
    else:
        err(f"updating stack {stack}")
        try:
            cfn.update_stack(StackName=stack, TemplateBody=body, Parameters=params)
        except ClientError as e:
            if "No updates are to be performed" not in str(e):
                raise
            err("no changes")
        want = ("UPDATE_COMPLETE", "CREATE_COMPLETE")
    st = wait(cfn, stack)
    if st["StackStatus"] not in want:
        err(f"stack {stack}: {st['StackStatus']} {st.get('StackStatusReason') or ''}")
        for line in failure_reasons(cfn, stack):
            print(line, file=sys.stderr)
        return 1
    for o in sorted(st.get("Outputs", []), key=lambda o: o["OutputKey"]):
        print(f"{upper_snake(o['OutputKey'])}={o['OutputValue']}")
    return 0


def destroy(endpoint, stack):
    cfn = client(endpoint, "cloudformation")
    if describe(cfn, stack) is None:
        err(f"stack {stack} does not exist")
        return 0
    cfn.delete_stack(StackName=stack)
    st = wait(cfn, stack, allow_missing=True)
    if st is not None and st["StackStatus"] != "DELETE_COMPLETE":
        err(f"stack {stack}: {st['StackStatus']}")
        for line in failure_reasons(cfn, stack):
            print(line, file=sys.stderr)
        return 1
    err(f"deleted stack {stack}")
    return 0


def ping(endpoint):
    try:
        client(endpoint, "dynamodb").list_tables(Limit=1)
        client(endpoint, "sqs").list_queues(MaxResults=1)
        client(endpoint, "cloudformation").list_stacks()
    except Exception as e:  # noqa: BLE001 - report whatever failed
        err(f"service check failed: {e}")
        return 1
    return 0


def main():
    port = os.environ.get("LOCALSTACK_PORT", "45670")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=f"http://127.0.0.1:{port}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("deploy")
    d.add_argument("--template", required=True)
    d.add_argument("stack")
    d.add_argument("params", nargs="*", metavar="Key=Value")
    x = sub.add_parser("destroy")
    x.add_argument("stack")
    sub.add_parser("ping")
    a = ap.parse_args()
    try:
        if a.cmd == "deploy":
            return deploy(a.endpoint, a.template, a.stack, a.params)
        if a.cmd == "destroy":
            return destroy(a.endpoint, a.stack)
        return ping(a.endpoint)
    except ClientError as e:
        err(str(e))
        return 1
    except (BotoCoreError, OSError) as e:
        err(f"{e} (is LocalStack running at {a.endpoint}?)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
