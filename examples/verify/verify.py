"""Verifies captured deliveries with the `standardwebhooks` PyPI package (tests/tests/interop.rs).

    .tools/interop-venv/bin/python examples/verify/verify.py CASES.json

CASES.json: {"cases": [{"name", "secret", "headers": {name: value}, "body": "<raw body>"}, ...]}.
Prints one JSON line per case: {"name", "valid", "error", "legacy_valid"}. `valid` is the library's
verdict on webhook-signature (with its own clock and 5 min tolerance); `legacy_valid` checks
x-webhook-signature (hex HMAC-SHA256 of the body; any of its comma-separated values) with the stdlib,
or is null without that header.
"""
import base64
import hashlib
import hmac
import json
import sys

import standardwebhooks
from standardwebhooks import Webhook, WebhookVerificationError


def legacy(secret: str, body: bytes, header):
    if header is None:
        return None
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    # One value per active secret during a rotation, joined by ", ": any may match.
    return any(hmac.compare_digest(expected, v.strip()) for v in header.split(","))


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    for case in cases:
        body = case["body"].encode("utf-8")  # the raw bytes that were received
        try:
            Webhook(case["secret"]).verify(body, case["headers"])
            valid, error = True, None
        except (WebhookVerificationError, ValueError) as e:
            valid, error = False, f"{type(e).__name__}: {e}"
        headers = {k.lower(): v for k, v in case["headers"].items()}
        print(json.dumps({
            "name": case["name"],
            "library": f"standardwebhooks {standardwebhooks.__version__} (PyPI)",
            "valid": valid,
            "error": error,
            "legacy_valid": legacy(case["secret"], body, headers.get("x-webhook-signature")),
        }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
