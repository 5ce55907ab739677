//! The operator commands of `webhooks-local` against a provisioned stack: create a key (printed
//! once), use it, revoke it.

use e2e::{StackOptions, TestStack};
use std::process::Command;

fn cli(stack: &TestStack, args: &[&str]) -> std::process::Output {
    // `cargo test --workspace` builds the workspace's binaries next to the test executables.
    let target = std::env::var("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| e2e::repo_root().join("target"));
    let bin = target.join("debug/webhooks-local");
    assert!(bin.exists(), "{} is missing: run `cargo build -p runner`", bin.display());
    let mut cmd = Command::new(bin);
    cmd.args(args).envs(&stack.outputs).env("RUST_LOG", "warn");
    cmd.output().expect("run webhooks-local")
}

#[tokio::test]
async fn create_key_prints_it_once_and_revoke_key_revokes_it() {
    let stack = TestStack::start(StackOptions::default()).await;
    let out = cli(&stack, &["create-key", "--tenant", "ops", "--scopes", "webhooks:read"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("whk_"), "{key}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let key_id = stderr.split_whitespace().find(|w| w.starts_with("key_")).expect("the key id is named").to_owned();
    assert!(!stderr.contains(&key), "the key is printed once, on stdout");

    let list = |k: String| {
        let http = stack.http.clone();
        let url = stack.api("/v1/subscriptions");
        async move { http.get(url).bearer_auth(k).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(list(key.clone()).await, 200);
    let out = cli(&stack, &["revoke-key", "--tenant", "ops", "--key-id", &key_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(list(key).await, 401);

    let out = cli(&stack, &["revoke-key", "--tenant", "someone-else", "--key-id", &key_id]);
    assert!(!out.status.success(), "another tenant's key id is not found");
    let out = cli(&stack, &["create-key", "--tenant", "ops", "--scopes", "webhooks:everything"]);
    assert_eq!(out.status.code(), Some(2));
}
