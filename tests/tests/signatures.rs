//! Signature schemes and profiles end to end: real deliveries from the pipeline on LocalStack,
//! captured on loopback, verified by receivers written from each format's own description —
//! `v1a` (ed25519) with Python's `cryptography` (examples/verify/ed25519.py), Node's `crypto`
//! (examples/verify/profiles.mjs) and `ed25519-dalek` (through `shared::signing::verify_v1a`, as
//! examples/rust-receiver does), before, during and after a rotation; the TRST `sha256=<hex>`
//! and TrustPager bare-hex profiles with a raw secret, across a rotation overlap (one value per
//! active secret), and the TRUST+ event header, with Node's `crypto` as their snippets do.
//!
//! Needs `scripts/interop-setup.sh` (the Python venv with `cryptography`); fails, never passes
//! silently, without it.

use e2e::receiver::{Received, Receiver};
use e2e::{eventually, repo_root, StackOptions, TestStack};
use serde_json::{json, Value};
use shared::signing::{self, PublicKey, DEFAULT_TOLERANCE_SECS};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// One case in the verifiers' CASES.json format, and the verdict it must get.
struct Case {
    json: Value,
    valid: bool,
}

fn case(name: &str, kind: &str, key: (&str, &str), header: Option<&str>, got: &Received, valid: bool) -> Case {
    let headers: BTreeMap<String, String> = got.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
    let mut json = json!({"name": name, "kind": kind, key.0: key.1, "headers": headers, "body": String::from_utf8(got.body.to_vec()).unwrap()});
    if let Some(h) = header {
        json["header"] = json!(h);
    }
    Case { json, valid }
}

/// Runs `program script CASES.json`; the verdict of each case by name.
fn run(program: &str, script: &str, cases: &[Case]) -> BTreeMap<String, (bool, Value)> {
    // Tests run at once in this process: each run its own file.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("webhooks-signatures-{}-{n}.json", std::process::id()));
    std::fs::write(&file, json!({"cases": cases.iter().map(|c| &c.json).collect::<Vec<_>>()}).to_string()).unwrap();
    let out = Command::new(program).arg(repo_root().join(script)).arg(&file).current_dir(repo_root()).output().unwrap_or_else(|e| panic!("{program} {script}: {e} (run scripts/interop-setup.sh)"));
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "{script}: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["name"].as_str().unwrap().to_owned(), (v["valid"].as_bool().unwrap(), v["error"].clone())))
        .collect()
}

fn check(verifier: &str, verdicts: &BTreeMap<String, (bool, Value)>, cases: &[Case]) {
    for c in cases {
        let name = c.json["name"].as_str().unwrap();
        let (valid, error) = verdicts.get(name).unwrap_or_else(|| panic!("{verifier} said nothing about {name}"));
        assert_eq!(*valid, c.valid, "{verifier} on {name}: {error}");
    }
}

fn python() -> String {
    let p = repo_root().join(".tools/interop-venv/bin/python");
    assert!(p.exists(), "the Python verifier venv is missing: run scripts/interop-setup.sh");
    p.display().to_string()
}

async fn subscribe(stack: &TestStack, body: Value) -> Value {
    let (status, sub) = stack.call("POST", "/v1/subscriptions", Some(body)).await;
    assert_eq!(status, 201, "{sub}");
    sub
}

async fn rotate(stack: &TestStack, id: &str, body: Option<Value>) -> Value {
    let (status, out) = stack.call("POST", &format!("/v1/subscriptions/{id}/rotate-secret"), body).await;
    assert_eq!(status, 200, "{out}");
    out
}

/// Publishes one event for the receiver and returns what it got.
async fn deliver(stack: &TestStack, receiver: &Receiver, event_id: &str) -> Received {
    let before = receiver.received().len();
    stack.publish(event_id, "project.created", json!({"project_id": event_id})).await;
    eventually(DEADLINE, event_id, || async { receiver.received().get(before).cloned() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1a_deliveries_verify_with_the_public_key_in_python_node_and_rust_across_a_rotation() {
    let py = python();
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[], 200).await;
    let sub = subscribe(&stack, json!({"url": receiver.url, "events": ["project.created"], "signature": {"scheme": "v1a"}})).await;
    assert!(sub.get("secret").is_none(), "{sub}");
    let id = sub["id"].as_str().unwrap();
    let old_pk = sub["signature"]["public_key"].as_str().unwrap().to_owned();

    let before = deliver(&stack, &receiver, "evt-v1a-1").await;
    assert!(before.header("x-webhook-signature").is_empty(), "no shared secret, no body HMAC");
    let new_pk = rotate(&stack, id, None).await["public_key"].as_str().unwrap().to_owned();
    let during = deliver(&stack, &receiver, "evt-v1a-2").await;
    assert_eq!(during.header("webhook-signature").split(' ').filter(|s| s.starts_with("v1a,")).count(), 2, "both keys sign during the overlap");
    let other = shared::signing::Secret::generate_ed25519().public_key().unwrap();

    let cases = vec![
        case("before rotation", "v1a", ("public_key", &old_pk), None, &before, true),
        case("overlap, old key", "v1a", ("public_key", &old_pk), None, &during, true),
        case("overlap, new key", "v1a", ("public_key", &new_pk), None, &during, true),
        case("before rotation, new key", "v1a", ("public_key", &new_pk), None, &before, false),
        case("unrelated key", "v1a", ("public_key", &other), None, &during, false),
    ];
    let mut tampered = case("tampered body", "v1a", ("public_key", &old_pk), None, &before, false);
    tampered.json["body"] = json!(tampered.json["body"].as_str().unwrap().replace("evt-v1a-1", "evt-v1a-X"));
    let cases: Vec<Case> = cases.into_iter().chain([tampered]).collect();
    check("cryptography (Python)", &run(&py, "examples/verify/ed25519.py", &cases), &cases);
    check("node:crypto", &run("node", "examples/verify/profiles.mjs", &cases), &cases);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for c in &cases {
        let h = |n: &str| c.json["headers"][n].as_str().unwrap_or_default().to_owned();
        let key = PublicKey::parse(c.json["public_key"].as_str().unwrap()).unwrap();
        let r = signing::verify_v1a(&key, &h("webhook-id"), &h("webhook-timestamp"), &h("webhook-signature"), c.json["body"].as_str().unwrap().as_bytes(), now, DEFAULT_TOLERANCE_SECS);
        assert_eq!(r.is_ok(), c.valid, "ed25519-dalek on {}: {r:?}", c.json["name"]);
    }

    // Migrating an HMAC subscription to v1a: during the overlap both schemes sign.
    let migrating = Receiver::statuses(&[], 200).await;
    let hmac = subscribe(&stack, json!({"url": migrating.url, "events": ["project.created"], "filter": {"data.project_id": "evt-migrate"}})).await;
    let migrated = rotate(&stack, hmac["id"].as_str().unwrap(), Some(json!({"scheme": "v1a"}))).await;
    assert!(migrated.get("secret").is_none() && migrated["public_key"].as_str().is_some(), "{migrated}");
    let got = deliver(&stack, &migrating, "evt-migrate").await;
    let sigs = got.header("webhook-signature");
    assert!(sigs.split(' ').any(|s| s.starts_with("v1,")) && sigs.split(' ').any(|s| s.starts_with("v1a,")), "{sigs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trst_trustpager_and_trust_plus_receivers_verify_their_own_formats_across_a_rotation() {
    let stack = TestStack::start(StackOptions::default()).await;
    let (trst, pager) = (Receiver::statuses(&[], 200).await, Receiver::statuses(&[], 200).await);
    // TRST: `X-Webhook-Signature: sha256=<hex>`, a whsec_ secret of its own.
    let trst_sub = subscribe(&stack, json!({"url": trst.url, "events": ["project.created"], "signature": {"profile": "sha256_hex", "header": "X-Webhook-Signature"}})).await;
    let trst_secret = trst_sub["secret"].as_str().unwrap().to_owned();
    // TrustPager: the customer's raw secret, bare hex in X-TrustPager-Signature; and TRUST+'s event header.
    let pager_secret = "tp-secret-0123456789abcdef";
    let pager_sub = subscribe(&stack, json!({"url": pager.url, "events": ["project.created"], "secret": pager_secret,
        "signature": {"profile": "hex", "header": "X-TrustPager-Signature", "event_header": "X-TrustPlus-Event"}})).await;
    assert_eq!(pager_sub["secret"], pager_secret);

    let both = |id: &'static str| {
        let (stack, trst, pager) = (&stack, &trst, &pager);
        async move {
            let before = (trst.received().len(), pager.received().len());
            stack.publish(id, "project.created", json!({"project_id": id})).await;
            eventually(DEADLINE, id, || async { Some((trst.received().get(before.0).cloned()?, pager.received().get(before.1).cloned()?)) }).await
        }
    };
    let (trst_1, pager_1) = both("evt-profiles-1").await;
    assert_eq!(pager_1.header("x-trustplus-event"), "project.created");
    assert!(pager_1.header("x-webhook-event").is_empty() && pager_1.header("x-webhook-signature").is_empty(), "the profile's names replace ours");
    assert!(!pager_1.header("x-trustpager-signature").contains('='), "bare hex");

    // Rotation: each receiver's old and new secrets both verify during the overlap.
    let trst_new = rotate(&stack, trst_sub["id"].as_str().unwrap(), None).await["secret"].as_str().unwrap().to_owned();
    let pager_new = "tp-secret-fedcba9876543210";
    rotate(&stack, pager_sub["id"].as_str().unwrap(), Some(json!({"secret": pager_new}))).await;
    let (trst_2, pager_2) = both("evt-profiles-2").await;
    assert_eq!(pager_2.header("x-trustpager-signature").split(", ").count(), 2, "one value per active secret");

    let h = Some("X-Webhook-Signature");
    let p = Some("X-TrustPager-Signature");
    let cases = vec![
        case("TRST", "sha256_hex", ("secret", &trst_secret), h, &trst_1, true),
        case("TRST overlap, old secret", "sha256_hex", ("secret", &trst_secret), h, &trst_2, true),
        case("TRST overlap, new secret", "sha256_hex", ("secret", &trst_new), h, &trst_2, true),
        case("TRST, new secret before rotation", "sha256_hex", ("secret", &trst_new), h, &trst_1, false),
        case("TrustPager", "hex", ("secret", pager_secret), p, &pager_1, true),
        case("TrustPager overlap, old secret", "hex", ("secret", pager_secret), p, &pager_2, true),
        case("TrustPager overlap, new secret", "hex", ("secret", pager_new), p, &pager_2, true),
        case("TrustPager, wrong secret", "hex", ("secret", "tp-secret-not-the-one!!"), p, &pager_1, false),
        case("TrustPager as TRST", "sha256_hex", ("secret", pager_secret), p, &pager_1, false),
    ];
    check("node:crypto", &run("node", "examples/verify/profiles.mjs", &cases), &cases);
}
