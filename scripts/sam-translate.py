#!/usr/bin/env python3
"""Translate a SAM template to plain CloudFormation, offline, and print it as JSON.

    .tools/venv/bin/python scripts/sam-translate.py infra/template.yaml > translated.json

Run it with the SAM venv's interpreter (scripts/sam.sh install): it uses that venv's pinned
aws-sam-translator, the same code CloudFormation's SAM transform runs. Why: `sam build` copies the
template (.aws-sam/build/template.yaml still has `Transform: AWS::Serverless-2016-10-31`), and
checkov only knows a few AWS::Serverless::* types, so the checks meant for the resources AWS
really creates (AWS::Lambda::Function, AWS::ApiGatewayV2::Stage, the IAM roles...) need them
spelled out. No credentials, no network: local CodeUri paths become a placeholder S3 URI (as
`sam validate` does) and no managed policy is looked up by name (the template names none).
"""
import json
import sys

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicyLookup:
    """The translator asks IAM for managed policy ARNs only for policies named without an ARN."""

    def load(self):
        sys.exit("sam-translate.py: the template names a managed policy without its ARN; "
                 "that needs an IAM lookup (credentials): use its ARN")


def placeholder_code_uris(template):
    placeholder = "s3://placeholder-bucket/placeholder-key"
    resources = template.get("Resources", {})
    for res in resources.values():
        props = res.get("Properties", {})
        kind = res.get("Type")
        if kind == "AWS::Serverless::Function" and props.get("PackageType", "Zip") == "Zip":
            if not str(props.get("CodeUri", "")).startswith("s3://"):
                props["CodeUri"] = placeholder
        elif kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::Serverless::StateMachine"):
            if "DefinitionUri" in props and not str(props["DefinitionUri"]).startswith("s3://"):
                props["DefinitionUri"] = placeholder
        elif kind == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = placeholder
    fn_globals = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in fn_globals:
        fn_globals["CodeUri"] = placeholder


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        template = yaml_parse(f.read())
    placeholder_code_uris(template)
    loader = NoManagedPolicyLookup()
    # The session only supplies a region for the pseudo parameters; nothing is called.
    session = boto3.session.Session(region_name="us-east-1")
    translated = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=session).translate(
        sam_template=template,
        parameter_values={},
        get_managed_policy_map=loader.load,
    )
    json.dump(translated, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
