//! Receiver interop: real deliveries from the pipeline on LocalStack, captured on loopback, are
//! verified by the libraries receivers use — `standardwebhooks` from PyPI and npm (through
//! `examples/verify/`) and `shared::signing::verify` (what `examples/rust-receiver` calls) — and
//! the Python and Node example receivers answer real deliveries and forgeries.
//!
//! Needs the verifier runtimes: run `scripts/interop-setup.sh` first (scripts/test.sh does). Without
//! them these tests fail; they never pass silently.

use base64::Engine;
use e2e::receiver::{Received, Receiver};
use e2e::{eventually, repo_root, StackOptions, TestStack};
use serde_json::{json, Value};
use shared::signing::{self, Secret, DEFAULT_TOLERANCE_SECS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);
const SETUP_HINT: &str = "run scripts/interop-setup.sh to install the receiver libraries the interop test verifies with";

/// The verifier runtimes, or a failure that says how to install them.
struct Runtimes {
    python: PathBuf,
}

fn runtimes() -> Runtimes {
    let root = repo_root();
    let python = root.join(".tools/interop-venv/bin/python");
    let mut missing = Vec::new();
    if !python.exists() {
        missing.push(".tools/interop-venv (Python standardwebhooks)".to_owned());
    }
    if !root.join("examples/node/node_modules/standardwebhooks/package.json").exists() {
        missing.push("examples/node/node_modules (npm standardwebhooks)".to_owned());
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => missing.push("node on PATH".to_owned()),
    }
    assert!(missing.is_empty(), "interop verifiers are not installed (missing: {}): {SETUP_HINT}", missing.join(", "));
    Runtimes { python }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One verification case: a delivery's headers and raw body, a secret, what must come out.
struct Case {
    name: &'static str,
    secret: String,
    headers: BTreeMap<String, String>,
    body: String,
    valid: bool,
    /// For `x-webhook-signature: sha256=<hex>`.
    legacy_valid: bool,
}

impl Case {
    fn from(name: &'static str, got: &Received, secret: &str, valid: bool, legacy_valid: bool) -> Self {
        let headers = ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "x-webhook-signature", "x-webhook-event"]
            .into_iter()
            .map(|h| (h.to_owned(), got.header(h).to_owned()))
            .collect();
        let body = String::from_utf8(got.body.to_vec()).expect("deliveries are UTF-8 JSON");
        Self { name, secret: secret.to_owned(), headers, body, valid, legacy_valid }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name, "secret": self.secret, "headers": self.headers, "body": self.body,
            "expect": {"valid": self.valid, "legacy_valid": self.legacy_valid},
        })
    }
}

/// What one library said about one case.
#[derive(Debug)]
struct Verdict {
    valid: bool,
    legacy_valid: Option<bool>,
    error: Option<String>,
}

/// `shared::signing::verify`, in-process, as the Rust example receiver calls it.
fn verify_in_rust(case: &Case) -> Verdict {
    let secret = Secret::parse(&case.secret).expect("valid secret");
    let body = case.body.as_bytes();
    let h = |n| case.header(n);
    let result = signing::verify(&secret, h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"), body, now(), DEFAULT_TOLERANCE_SECS);
    Verdict {
        valid: result.is_ok(),
        legacy_valid: Some(h("x-webhook-signature").split(',').any(|v| v.trim() == secret.sign_body_hex(body))),
        error: result.err().map(|e| e.to_string()),
    }
}

/// Runs a command-line verifier on the cases file; one JSON line per case, keyed by name.
fn run_verifier(program: &Path, script: &str, cases_file: &Path) -> BTreeMap<String, Verdict> {
    let out = Command::new(program)
        .arg(repo_root().join(script))
        .arg(cases_file)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("run {} {script}: {e} — {SETUP_HINT}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed ({}): {stderr}\n{stdout}\n{SETUP_HINT}", out.status);
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{script} printed `{line}`: {e}"));
            let verdict = Verdict {
                valid: v["valid"].as_bool().expect("valid is a bool"),
                legacy_valid: v["legacy_valid"].as_bool(),
                error: v["error"].as_str().map(str::to_owned),
            };
            (v["name"].as_str().expect("name").to_owned(), verdict)
        })
        .collect()
}

#[tokio::test]
async fn captured_deliveries_verify_alike_in_python_node_and_rust() {
    let rt = runtimes();
    let stack = TestStack::start(StackOptions::default()).await;
    let plain = Receiver::statuses(&[], 204).await;
    let rotating = Receiver::statuses(&[], 204).await;

    // (a) a subscription with one secret; (b) one rotated just before the event, so the delivery
    // is made during the overlap and carries two signatures.
    let a = stack.create_subscription(&plain.url, &["project.*"]).await;
    let secret_a = a["secret"].as_str().unwrap().to_owned();
    let b = stack.create_subscription(&rotating.url, &["project.*"]).await;
    let old_b = b["secret"].as_str().unwrap().to_owned();
    let (status, rotated) = stack.call("POST", &format!("/v1/subscriptions/{}/rotate-secret", b["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200, "rotate-secret: {rotated}");
    let new_b = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old_b, new_b);
    // (c) a subscription that takes thin payloads: the envelope without `data`.
    let thin = Receiver::statuses(&[], 204).await;
    let (status, c) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": thin.url, "events": ["project.*"], "payload": "thin"}))).await;
    assert_eq!((status, c["payload"].as_str()), (201, Some("thin")), "{c}");
    let secret_c = c["secret"].as_str().unwrap().to_owned();
    // (d) a subscription that brings its own secret (a receiver moving to us keeps its key).
    let own_receiver = Receiver::statuses(&[], 204).await;
    let own_secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([0x5au8; 40]));
    let (status, d) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": own_receiver.url, "events": ["project.*"], "secret": own_secret}))).await;
    assert_eq!((status, d["secret"].as_str()), (201, Some(own_secret.as_str())), "{d}");

    // Non-ASCII text, escapes and a newline: the body must be verified byte for byte.
    let data = json!({"project_id": "p1", "name": "Café ✓ — naïve 😀", "note": "a \"quoted\" \\ back\nslash", "n": 1.5e3});
    stack.publish("evt-interop-1", "project.created", data.clone()).await;
    let got_a = eventually(DEADLINE, "the delivery to (a)", || async { plain.received().into_iter().next() }).await;
    let got_b = eventually(DEADLINE, "the delivery to (b)", || async { rotating.received().into_iter().next() }).await;
    assert_eq!(got_b.header("webhook-signature").split(' ').count(), 2, "two signatures during the overlap: {}", got_b.header("webhook-signature"));
    assert_eq!(got_a.header("webhook-signature").split(' ').count(), 1);
    assert!(String::from_utf8_lossy(&got_a.body).contains("Café ✓ — naïve 😀"), "raw UTF-8 in the body");
    let got_c = eventually(DEADLINE, "the delivery to (c)", || async { thin.received().into_iter().next() }).await;
    let got_d = eventually(DEADLINE, "the delivery to (d)", || async { own_receiver.received().into_iter().next() }).await;
    let thin_body: Value = serde_json::from_slice(&got_c.body).expect("a JSON body");
    let expected = json!({"event_id": "evt-interop-1", "event_type": "project.created", "tenant_id": "acme", "occurred_at": e2e::ENVELOPE_TIME, "delivery_id": got_c.header("webhook-id"), "thin": true});
    assert_eq!(thin_body, expected, "the thin form");
    // Its receiver fetches the data by the delivery id; the log shows what was POSTed.
    let (status, detail) = stack.call("GET", &format!("/v1/deliveries/{}", got_c.header("webhook-id")), None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!((&detail["event"]["data"], &detail["request"]["payload"]), (&data, &thin_body));

    let mut cases = vec![
        Case::from("delivery", &got_a, &secret_a, true, true),
        Case::from("rotation overlap, new secret", &got_b, &new_b, true, true),
        // The legacy header carries one value per active secret, comma-separated.
        Case::from("rotation overlap, previous secret", &got_b, &old_b, true, true),
        Case::from("rotation overlap, unrelated secret", &got_b, Secret::generate().expose(), false, false),
        Case::from("wrong secret", &got_a, Secret::generate().expose(), false, false),
        Case::from("thin payload", &got_c, &secret_c, true, true),
        Case::from("thin payload, wrong secret", &got_c, Secret::generate().expose(), false, false),
        Case::from("the customer's own secret", &got_d, &own_secret, true, true),
    ];

    // Header names as a framework may present them: the libraries match case-insensitively.
    let mut mixed = Case::from("delivery, mixed-case header names", &got_a, &secret_a, true, true);
    mixed.headers = mixed.headers.into_iter().map(|(k, v)| (k.split('-').map(title).collect::<Vec<_>>().join("-"), v)).collect();
    cases.push(mixed);

    let mut tampered = Case::from("tampered body", &got_a, &secret_a, false, false);
    tampered.body = tampered.body.replace("\"p1\"", "\"p2\"");
    assert_ne!(tampered.body, cases[0].body);
    cases.push(tampered);

    // Re-signed with the right secret: the signature is valid, only the timestamp is off.
    let secret = Secret::parse(&secret_a).unwrap();
    let id = got_a.header("webhook-id").to_owned();
    for (name, offset, valid) in [
        ("re-signed now (control)", 0, true),
        ("re-signed 10 minutes ago (stale)", -600, false),
        ("re-signed 10 minutes ahead (future)", 600, false),
    ] {
        // The legacy header has no timestamp: a replay of it is not detected.
        let mut c = Case::from(name, &got_a, &secret_a, valid, true);
        let ts = now() + offset;
        c.headers.insert("webhook-timestamp".into(), ts.to_string());
        c.headers.insert("webhook-signature".into(), secret.sign(&id, ts, c.body.as_bytes()));
        cases.push(c);
    }

    let file = std::env::temp_dir().join(format!("interop-cases-{}-{}.json", std::process::id(), now()));
    let doc = json!({"cases": cases.iter().map(Case::json).collect::<Vec<_>>()});
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).expect("write the cases file");

    let python = run_verifier(&rt.python, "examples/verify/verify.py", &file);
    let node = run_verifier(Path::new("node"), "examples/verify/verify.mjs", &file);
    let rust: BTreeMap<String, Verdict> = cases.iter().map(|c| (c.name.to_owned(), verify_in_rust(c))).collect();

    let mut failures = Vec::new();
    let mut checked = 0;
    for (library, verdicts) in [("python standardwebhooks", &python), ("npm standardwebhooks", &node), ("rust shared::signing", &rust)] {
        for case in &cases {
            checked += 1;
            match verdicts.get(case.name) {
                None => failures.push(format!("{library}: no result for `{}`", case.name)),
                Some(v) if v.valid != case.valid || v.legacy_valid != Some(case.legacy_valid) => failures.push(format!(
                    "{library}: `{}`: valid={} legacy_valid={:?} (error {:?}); expected valid={} legacy_valid={}",
                    case.name, v.valid, v.legacy_valid, v.error, case.valid, case.legacy_valid
                )),
                Some(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "verdicts differ (cases in {}):\n{}", file.display(), failures.join("\n"));
    let _ = std::fs::remove_file(&file);
    println!("interop: {checked} verdicts agree ({} cases × 3 libraries)", cases.len());
}

fn title(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// An example receiver running as a child process; killed (by its own pid) when dropped.
struct Example {
    name: &'static str,
    child: Child,
    url: String,
    log: PathBuf,
}

impl Example {
    fn start(name: &'static str, program: &Path, script: &str, secret: &str, port: u16) -> Self {
        let log = std::env::temp_dir().join(format!("interop-{name}-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .arg(repo_root().join(script))
            .env("WEBHOOK_SECRET", secret)
            .env("PORT", port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start the {name} example: {e} — {SETUP_HINT}"));
        Self { name, child, url: format!("http://127.0.0.1:{port}/webhook"), log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_listening(&mut self) {
        let addr = self.url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
        let start = Instant::now();
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the {} example exited ({status}): {}\n{SETUP_HINT}", self.name, self.output());
            }
            assert!(start.elapsed() < Duration::from_secs(20), "the {} example does not listen: {}", self.name, self.output());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[tokio::test]
async fn example_receivers_accept_real_deliveries_and_reject_forgeries() {
    let rt = runtimes();
    let stack = TestStack::start(StackOptions::default()).await;
    let http = reqwest::Client::new();
    let mut examples = Vec::new();
    for (name, program, script) in [("python", rt.python.as_path(), "examples/python/receiver.py"), ("node", Path::new("node"), "examples/node/receiver.js")] {
        // The URL is needed to subscribe, and the subscription's secret to start the receiver.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let sub = stack.create_subscription(&format!("http://127.0.0.1:{port}/webhook"), &["project.*"]).await;
        let secret = sub["secret"].as_str().unwrap().to_owned();
        let mut ex = Example::start(name, program, script, &secret, port);
        ex.wait_listening().await;
        examples.push((ex, sub["id"].as_str().unwrap().to_owned(), secret));
    }

    stack.publish("evt-examples-1", "project.created", json!({"project_id": "p1", "name": "Café ✓"})).await;

    for (ex, sub_id, secret) in &examples {
        let path = format!("/v1/subscriptions/{sub_id}/deliveries");
        let delivery = eventually(DEADLINE, &format!("a settled delivery to the {} example", ex.name), || async {
            let (_, page) = stack.call("GET", &path, None).await;
            page["data"].as_array().and_then(|d| d.iter().find(|d| d["status"] != "queued" && d["status"] != "retrying").cloned())
        })
        .await;
        assert_eq!(
            (delivery["status"].as_str(), delivery["last_status_code"].as_u64()),
            (Some("delivered"), Some(204)),
            "the {} example answers a real delivery with 204: {delivery}\n{}",
            ex.name,
            ex.output()
        );
        let dlv = delivery["id"].as_str().unwrap().to_owned();
        eventually(Duration::from_secs(10), "the example to log the verified event", || async {
            ex.output().contains(&format!("verified {dlv} project.created evt-examples-1")).then_some(())
        })
        .await;

        // Forgeries and a fresh, correctly signed request straight to the example.
        let body = r#"{"event_id":"evt-direct","event_type":"project.updated","tenant_id":"acme","occurred_at":"2026-11-22T10:00:00Z","data":{}}"#;
        let right = Secret::parse(secret).unwrap();
        let wrong = Secret::generate();
        let ts = now();
        let requests = [
            ("signed right", "msg_direct_1", ts, right.sign("msg_direct_1", ts, body.as_bytes()), body, 204),
            ("a retry of it (same webhook-id)", "msg_direct_1", ts, right.sign("msg_direct_1", ts, body.as_bytes()), body, 204),
            ("wrong secret", "msg_direct_2", ts, wrong.sign("msg_direct_2", ts, body.as_bytes()), body, 400),
            ("stale", "msg_direct_3", ts - 600, right.sign("msg_direct_3", ts - 600, body.as_bytes()), body, 400),
            ("tampered", "msg_direct_4", ts, right.sign("msg_direct_4", ts, body.as_bytes()), &body.replace("acme", "evil")[..], 400),
            ("no signature", "msg_direct_5", ts, String::new(), body, 400),
        ];
        for (what, id, ts, sig, body, want) in requests {
            let mut req = http
                .post(&ex.url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string());
            if !sig.is_empty() {
                req = req.header("webhook-signature", sig);
            }
            let status = req.body(body.to_owned()).send().await.unwrap().status().as_u16();
            assert_eq!(status, want, "the {} example, {what}: {}", ex.name, ex.output());
        }
        // Accepted twice, processed once: the examples deduplicate by webhook-id.
        let line = "verified msg_direct_1 project.updated evt-direct";
        eventually(Duration::from_secs(10), "the example to log the direct event", || async { ex.output().contains(line).then_some(()) }).await;
        e2e::quiet(Duration::from_millis(300), &format!("second `{line}` from the {} example", ex.name), || async { (ex.output().matches(line).count() > 1).then(|| ex.output()) }).await;
        assert_eq!(ex.output().matches(line).count(), 1, "the {} example processes a webhook-id once: {}", ex.name, ex.output());
    }
}

/// The worked example in docs/receiving-webhooks.md signs as shown there (keep them in sync).
#[test]
fn the_worked_example_in_the_receiver_docs_is_right() {
    let secret = Secret::parse("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let (id, ts) = ("dlv_2459cca51dfeb8ed170702a8318e1e52", 1795341603);
    let body = r#"{"event_id":"evt-123","event_type":"project.created","tenant_id":"acme","occurred_at":"2026-11-22T10:00:00Z","data":{"project_id":"p1"}}"#;
    let signature = "v1,GztOF0y43QGt/JnIsRq1joQh176U3NYg4uSeHiR463k=";
    let legacy = "sha256=daf84b6bc0c189d5d94f98a871ad42545f11d68edd655c7ebd7d35b2f8427de5";
    assert_eq!(secret.sign(id, ts, body.as_bytes()), signature);
    assert_eq!(secret.sign_body_hex(body.as_bytes()), legacy);
    let doc = std::fs::read_to_string(repo_root().join("docs/receiving-webhooks.md")).expect("the receiver docs");
    for shown in [id, &ts.to_string(), body, signature, legacy, secret.expose()] {
        assert!(doc.contains(shown), "docs/receiving-webhooks.md shows `{shown}`");
    }
}
