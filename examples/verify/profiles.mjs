// Verifies deliveries the way receivers of the other signature profiles do it: Node's builtin
// `crypto` only (Node >= 18, no npm packages), as the source documents' snippets do.
//
//   node examples/verify/profiles.mjs CASES.json
//   node examples/verify/profiles.mjs --self-test             # signs its own cases, checks verdicts
//   node examples/verify/profiles.mjs --emit-cases > c.json   # those cases, for ed25519.py
//
// CASES.json: {"cases": [{"name", "kind": "sha256_hex" | "hex" | "v1a",
//   "secret"?: "whsec_... or a raw secret", "public_key"?: "whpk_...", "header"?: "<header name>",
//   "headers": {name: value}, "body": "<raw body>"}, ...]}.
// Prints one JSON line per case: {"name", "valid", "error"} (`error` is null when valid).
//
// - sha256_hex (TRST): `<header>: sha256=<hex HMAC-SHA256(key, raw body)>`
// - hex (TrustPager):  `<header>: <hex HMAC-SHA256(key, raw body)>`
//   `header` defaults to x-webhook-signature. key = the base64-decoded bytes after `whsec_`, or a
//   raw secret's own text (TrustPager's `crypto.createHmac('sha256', secret)`). During a rotation
//   overlap the header holds several values, newest first, joined by ", ": any one may match.
// - v1a (Standard Webhooks ed25519): `webhook-signature: v1a,<base64 signature> ...` over
//   `${webhook-id}.${webhook-timestamp}.${body}`, public key `whpk_` + base64 of its 32 raw bytes;
//   the timestamp must be within 300 s of this clock.
import { createHmac, createPublicKey, generateKeyPairSync, randomBytes, sign, timingSafeEqual, verify } from "node:crypto";
import { readFileSync } from "node:fs";

const TOLERANCE_SECS = 300;
// The DER prefix of an ed25519 SubjectPublicKeyInfo: the 32 raw key bytes follow it.
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

function hmacKey(secret) {
  return secret.startsWith("whsec_") ? Buffer.from(secret.slice("whsec_".length), "base64") : secret;
}

function equal(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function lower(headers) {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

// Returns null when the request verifies, else why not.
function verifyHex(c, prefix) {
  if (typeof c.secret !== "string") return "the case has no secret";
  const name = (c.header ?? "x-webhook-signature").toLowerCase();
  const value = lower(c.headers)[name];
  if (value === undefined) return `missing header ${name}`;
  const expected = prefix + createHmac("sha256", hmacKey(c.secret)).update(c.body, "utf8").digest("hex");
  // One value per active secret during a rotation overlap: `sha256=<new>, sha256=<old>`.
  const values = value.split(",").map((v) => v.trim());
  return values.some((v) => equal(v, expected)) ? null : "no matching signature";
}

function publicKeyFromWhpk(whpk) {
  if (!whpk.startsWith("whpk_")) throw new Error("public key does not start with whpk_");
  const raw = Buffer.from(whpk.slice("whpk_".length), "base64");
  if (raw.length !== 32) throw new Error(`public key is ${raw.length} bytes, not 32`);
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

function verifyV1a(c, now = Math.floor(Date.now() / 1000)) {
  if (typeof c.public_key !== "string") return "the case has no public_key";
  let publicKey;
  try {
    publicKey = publicKeyFromWhpk(c.public_key);
  } catch (err) {
    return err.message;
  }
  const h = lower(c.headers);
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    if (h[name] === undefined) return `missing header ${name}`;
  }
  const ts = h["webhook-timestamp"];
  if (!/^\d+$/.test(ts)) return "invalid webhook-timestamp";
  if (Math.abs(now - Number(ts)) > TOLERANCE_SECS) return "timestamp too old or too new";
  const data = Buffer.from(`${h["webhook-id"]}.${ts}.${c.body}`, "utf8");
  // Space-separated entries: several during a rotation, a v1 and a v1a one while migrating.
  for (const entry of h["webhook-signature"].split(" ")) {
    const [version, b64] = entry.split(",", 2);
    if (version !== "v1a" || !b64) continue;
    const sig = Buffer.from(b64, "base64");
    if (sig.length === 64 && verify(null, data, publicKey, sig)) return null;
  }
  return "no matching signature";
}

function check(c) {
  switch (c.kind) {
    case "sha256_hex":
      return verifyHex(c, "sha256=");
    case "hex":
      return verifyHex(c, "");
    case "v1a":
      return verifyV1a(c);
    default:
      return `unknown kind ${JSON.stringify(c.kind)}`;
  }
}

// --- self-test: cases signed here, each with the verdict it must get -----------------------

function newKeyPair() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(ED25519_SPKI_PREFIX.length);
  return { privateKey, whpk: `whpk_${raw.toString("base64")}` };
}

const v1aSig = (privateKey, id, ts, body) =>
  `v1a,${sign(null, Buffer.from(`${id}.${ts}.${body}`), privateKey).toString("base64")}`;
const hmacHex = (secret, body) => createHmac("sha256", hmacKey(secret)).update(body).digest("hex");
const v1Sig = (secret, id, ts, body) =>
  `v1,${createHmac("sha256", hmacKey(secret)).update(`${id}.${ts}.${body}`).digest("base64")}`;

function selfTestCases() {
  const body = JSON.stringify({ event_id: "evt-1", event_type: "project.created", tenant_id: "acme",
    occurred_at: "2026-11-22T10:00:00Z", data: { project_id: "p1", name: "Café" } });
  const id = `dlv_${randomBytes(16).toString("hex")}`;
  const now = Math.floor(Date.now() / 1000);
  const cur = newKeyPair();
  const old = newKeyPair();
  const other = newKeyPair();
  const whsec = `whsec_${randomBytes(32).toString("base64")}`;
  const whsecOld = `whsec_${randomBytes(32).toString("base64")}`;
  const raw = "tp_live_8f1d2c3b4a5e6f7081929394a5b6c7d8"; // TrustPager-style raw secret
  const rawOld = "tp_live_0000aaaabbbbccccddddeeeeffff1111";
  const std = (ts, sig) => ({ "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": sig });
  const cases = [
    // v1a
    { name: "v1a valid", expect: true, kind: "v1a", public_key: cur.whpk,
      headers: std(now, v1aSig(cur.privateKey, id, now, body)), body },
    { name: "v1a header names in any case", expect: true, kind: "v1a", public_key: cur.whpk,
      headers: { "Webhook-Id": id, "Webhook-Timestamp": String(now), "Webhook-Signature": v1aSig(cur.privateKey, id, now, body) }, body },
    { name: "v1a rotation: new and previous key, verified with the previous", expect: true, kind: "v1a",
      public_key: old.whpk,
      headers: std(now, `${v1aSig(cur.privateKey, id, now, body)} ${v1aSig(old.privateKey, id, now, body)}`), body },
    { name: "v1a migration: v1 and v1a entries", expect: true, kind: "v1a", public_key: cur.whpk,
      headers: std(now, `${v1aSig(cur.privateKey, id, now, body)} ${v1Sig(whsec, id, now, body)}`), body },
    { name: "v1a migration: v1 first", expect: true, kind: "v1a", public_key: cur.whpk,
      headers: std(now, `${v1Sig(whsec, id, now, body)} ${v1aSig(cur.privateKey, id, now, body)}`), body },
    { name: "v1a only a v1 entry", expect: false, kind: "v1a", public_key: cur.whpk,
      headers: std(now, v1Sig(whsec, id, now, body)), body },
    { name: "v1a tampered body", expect: false, kind: "v1a", public_key: cur.whpk,
      headers: std(now, v1aSig(cur.privateKey, id, now, body)), body: body.replace("p1", "p2") },
    { name: "v1a other id", expect: false, kind: "v1a", public_key: cur.whpk,
      headers: { ...std(now, v1aSig(cur.privateKey, id, now, body)), "webhook-id": "dlv_other" }, body },
    { name: "v1a wrong key", expect: false, kind: "v1a", public_key: other.whpk,
      headers: std(now, v1aSig(cur.privateKey, id, now, body)), body },
    { name: "v1a timestamp 10 min old", expect: false, kind: "v1a", public_key: cur.whpk,
      headers: std(now - 600, v1aSig(cur.privateKey, id, now - 600, body)), body },
    { name: "v1a timestamp 10 min ahead", expect: false, kind: "v1a", public_key: cur.whpk,
      headers: std(now + 600, v1aSig(cur.privateKey, id, now + 600, body)), body },
    { name: "v1a truncated signature", expect: false, kind: "v1a", public_key: cur.whpk,
      headers: std(now, v1aSig(cur.privateKey, id, now, body).slice(0, 60)), body },
    { name: "v1a missing webhook-signature", expect: false, kind: "v1a", public_key: cur.whpk,
      headers: { "webhook-id": id, "webhook-timestamp": String(now) }, body },
    // sha256_hex (TRST)
    { name: "sha256_hex valid", expect: true, kind: "sha256_hex", secret: whsec,
      headers: { "x-webhook-signature": `sha256=${hmacHex(whsec, body)}` }, body },
    { name: "sha256_hex the documented worked example", expect: true, kind: "sha256_hex",
      secret: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
      headers: { "x-webhook-signature": "sha256=daf84b6bc0c189d5d94f98a871ad42545f11d68edd655c7ebd7d35b2f8427de5" },
      body: '{"event_id":"evt-123","event_type":"project.created","tenant_id":"acme","occurred_at":"2026-11-22T10:00:00Z","data":{"project_id":"p1"}}' },
    { name: "sha256_hex custom header", expect: true, kind: "sha256_hex", secret: whsec, header: "X-TRST-Signature",
      headers: { "x-trst-signature": `sha256=${hmacHex(whsec, body)}` }, body },
    { name: "sha256_hex overlap, verified with the previous secret", expect: true, kind: "sha256_hex", secret: whsecOld,
      headers: { "x-webhook-signature": `sha256=${hmacHex(whsec, body)}, sha256=${hmacHex(whsecOld, body)}` }, body },
    { name: "sha256_hex overlap, verified with the new secret", expect: true, kind: "sha256_hex", secret: whsec,
      headers: { "x-webhook-signature": `sha256=${hmacHex(whsec, body)}, sha256=${hmacHex(whsecOld, body)}` }, body },
    { name: "sha256_hex key is the decoded bytes, not the text", expect: false, kind: "sha256_hex", secret: whsec,
      headers: { "x-webhook-signature": `sha256=${createHmac("sha256", whsec).update(body).digest("hex")}` }, body },
    { name: "sha256_hex tampered body", expect: false, kind: "sha256_hex", secret: whsec,
      headers: { "x-webhook-signature": `sha256=${hmacHex(whsec, body)}` }, body: `${body} ` },
    { name: "sha256_hex without prefix", expect: false, kind: "sha256_hex", secret: whsec,
      headers: { "x-webhook-signature": hmacHex(whsec, body) }, body },
    // hex (TrustPager), raw and whsec_ secrets
    { name: "hex raw secret", expect: true, kind: "hex", secret: raw, header: "X-TrustPager-Signature",
      headers: { "X-TrustPager-Signature": createHmac("sha256", raw).update(body).digest("hex") }, body },
    { name: "hex raw secret overlap, previous secret", expect: true, kind: "hex", secret: rawOld, header: "x-trustpager-signature",
      headers: { "x-trustpager-signature": `${hmacHex(raw, body)}, ${hmacHex(rawOld, body)}` }, body },
    { name: "hex whsec secret, default header", expect: true, kind: "hex", secret: whsec,
      headers: { "x-webhook-signature": hmacHex(whsec, body) }, body },
    { name: "hex wrong secret", expect: false, kind: "hex", secret: rawOld, header: "x-trustpager-signature",
      headers: { "x-trustpager-signature": hmacHex(raw, body) }, body },
    { name: "hex missing header", expect: false, kind: "hex", secret: raw, header: "x-trustpager-signature",
      headers: { "x-webhook-signature": hmacHex(raw, body) }, body },
    { name: "hex with a sha256= prefix", expect: false, kind: "hex", secret: raw, header: "x-trustpager-signature",
      headers: { "x-trustpager-signature": `sha256=${hmacHex(raw, body)}` }, body },
  ];
  return cases;
}

function run(cases) {
  for (const c of cases) {
    const error = check(c);
    console.log(JSON.stringify({ name: c.name, valid: error === null, error }));
  }
}

const arg = process.argv[2];
if (arg === "--self-test") {
  let failed = 0;
  const cases = selfTestCases();
  for (const c of cases) {
    const error = check(c);
    const ok = (error === null) === c.expect;
    if (!ok) failed += 1;
    console.log(`${ok ? "ok  " : "FAIL"} ${c.name}: ${error === null ? "valid" : error}`);
  }
  console.log(`${cases.length - failed}/${cases.length} as expected`);
  process.exit(failed ? 1 : 0);
} else if (arg === "--emit-cases") {
  console.log(JSON.stringify({ cases: selfTestCases() }, null, 1));
} else if (arg && !arg.startsWith("--")) {
  run(JSON.parse(readFileSync(arg, "utf8")).cases);
} else {
  console.error("usage: node profiles.mjs CASES.json | --self-test | --emit-cases");
  process.exit(2);
}
