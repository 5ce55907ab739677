// Verifies captured deliveries with the `standardwebhooks` npm package (tests/tests/interop.rs).
//
//   node examples/verify/verify.mjs CASES.json
//
// Same input and output as verify.py. The library is the one the Node example installs
// (`npm ci` in examples/node), so both use the pinned version from its package-lock.json.
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const { Webhook } = require("standardwebhooks");
const { version } = require("standardwebhooks/package.json");

function legacy(secret, body, header) {
  if (header === undefined) return null;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = Buffer.from(`sha256=${createHmac("sha256", key).update(body, "utf8").digest("hex")}`);
  // One value per active secret during a rotation, joined by ", ": any may match.
  return header.split(",").map((v) => Buffer.from(v.trim())).some((got) => got.length === expected.length && timingSafeEqual(got, expected));
}

const { cases } = JSON.parse(readFileSync(process.argv[2], "utf8"));
for (const c of cases) {
  let valid = false;
  let error = null;
  try {
    // The raw body string: the library signs `${id}.${ts}.${payload}` and then JSON-parses it.
    new Webhook(c.secret).verify(c.body, c.headers);
    valid = true;
  } catch (err) {
    error = `${err.name}: ${err.message}`;
  }
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k.toLowerCase(), v]));
  console.log(
    JSON.stringify({
      name: c.name,
      library: `standardwebhooks ${version} (npm)`,
      valid,
      error,
      legacy_valid: legacy(c.secret, c.body, headers["x-webhook-signature"]),
    }),
  );
}
