"""Verifies Standard Webhooks `v1a` (ed25519) deliveries with the PyPI `cryptography` package.

    .tools/interop-venv/bin/python examples/verify/ed25519.py CASES.json
    .tools/interop-venv/bin/python examples/verify/ed25519.py --self-test

CASES.json: the format of profiles.mjs, {"cases": [{"name", "kind": "v1a", "public_key": "whpk_...",
"headers": {name: value}, "body": "<raw body>"}, ...]}; cases of other kinds are skipped (use
profiles.mjs for them). Prints one JSON line per v1a case: {"name", "valid", "error"}.

`webhook-signature` holds space-separated entries; each `v1a,<base64 of the 64-byte signature>` is
checked against `{webhook-id}.{webhook-timestamp}.{raw body}` with the public key: `whpk_` + base64
of the 32 raw key bytes. The timestamp must be within 300 s of this clock.
"""
from __future__ import annotations

import base64
import binascii
import json
import sys
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TOLERANCE_SECS = 300


def public_key(whpk: str) -> Ed25519PublicKey:
    if not whpk.startswith("whpk_"):
        raise ValueError("public key does not start with whpk_")
    raw = base64.b64decode(whpk.removeprefix("whpk_"), validate=True)
    return Ed25519PublicKey.from_public_bytes(raw)  # ValueError unless 32 bytes


def verify_v1a(whpk: str, headers: dict, body: bytes, now: int | None = None) -> str | None:
    """None when the request verifies, else why not."""
    try:
        key = public_key(whpk)
    except (ValueError, binascii.Error) as e:
        return f"bad public key: {e}"
    h = {k.lower(): v for k, v in headers.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if name not in h:
            return f"missing header {name}"
    ts = h["webhook-timestamp"]
    if not (ts.isascii() and ts.isdigit()):
        return "invalid webhook-timestamp"
    now = int(time.time()) if now is None else now
    if abs(now - int(ts)) > TOLERANCE_SECS:
        return "timestamp too old or too new"
    signed = f"{h['webhook-id']}.{ts}.".encode() + body
    # Several entries during a rotation; a v1 and a v1a one while migrating from v1 to v1a.
    for entry in h["webhook-signature"].split(" "):
        version, _, b64 = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(b64, validate=True), signed)
            return None
        except (InvalidSignature, ValueError, binascii.Error):
            continue
    return "no matching signature"


def run(cases: list) -> None:
    for case in cases:
        if case.get("kind") != "v1a":
            continue
        body = case["body"].encode("utf-8")  # the raw bytes that were received
        error = verify_v1a(case.get("public_key", ""), case["headers"], body)
        print(json.dumps({"name": case["name"], "valid": error is None, "error": error}), flush=True)


def self_test() -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    def pair():
        sk = Ed25519PrivateKey.generate()
        raw = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return sk, "whpk_" + base64.b64encode(raw).decode()

    def sig(sk, msg_id, ts, body):
        return "v1a," + base64.b64encode(sk.sign(f"{msg_id}.{ts}.".encode() + body)).decode()

    cur, cur_pk = pair()
    old, old_pk = pair()
    _, other_pk = pair()
    body = '{"event_id":"evt-1","event_type":"project.created","data":{"name":"Café"}}'.encode()
    msg_id, now = "dlv_0123456789abcdef0123456789abcdef", int(time.time())

    def hdrs(ts, signature):
        return {"Webhook-Id": msg_id, "Webhook-Timestamp": str(ts), "Webhook-Signature": signature}

    v1 = "v1,GztOF0y43QGt/JnIsRq1joQh176U3NYg4uSeHiR463k="
    cases = [
        ("valid", True, cur_pk, hdrs(now, sig(cur, msg_id, now, body)), body),
        ("rotation, previous key", True, old_pk,
         hdrs(now, f"{sig(cur, msg_id, now, body)} {sig(old, msg_id, now, body)}"), body),
        ("migration v1 + v1a", True, cur_pk, hdrs(now, f"{v1} {sig(cur, msg_id, now, body)}"), body),
        ("only v1", False, cur_pk, hdrs(now, v1), body),
        ("tampered body", False, cur_pk, hdrs(now, sig(cur, msg_id, now, body)), body + b" "),
        ("wrong key", False, other_pk, hdrs(now, sig(cur, msg_id, now, body)), body),
        ("10 min old", False, cur_pk, hdrs(now - 600, sig(cur, msg_id, now - 600, body)), body),
        ("not base64", False, cur_pk, hdrs(now, "v1a,!!!!"), body),
        ("bad key", False, "whpk_AAAA", hdrs(now, sig(cur, msg_id, now, body)), body),
    ]
    failed = 0
    for name, expect, pk, headers, raw_body in cases:
        error = verify_v1a(pk, headers, raw_body)
        ok = (error is None) == expect
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {error or 'valid'}")
    print(f"{len(cases) - failed}/{len(cases)} as expected")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    with open(sys.argv[1], encoding="utf-8") as f:
        run(json.load(f)["cases"])
