//! The Lambda bootstraps of `sam build`: where they are, their environment, and launching one
//! against the runtime API stub (figures 4 and 5).

use crate::cleanup::{track, untrack};
use crate::stacks::Stack;
use crate::stub;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const FUNCTIONS: [(&str, &str); 3] = [("api", "ApiFunction"), ("fanout", "FanoutFunction"), ("delivery", "DeliveryFunction")];

/// `.aws-sam/build/<Function>/bootstrap`, or `$PERF_BOOTSTRAP_DIR/<api|fanout|delivery>` to measure
/// a candidate build (e.g. a `target/release` of other features or profile settings).
pub fn bootstrap_path(dir: &str) -> PathBuf {
    if let Ok(alt) = std::env::var("PERF_BOOTSTRAP_DIR") {
        let name = FUNCTIONS.iter().find(|(_, d)| *d == dir).map(|(f, _)| *f).unwrap_or(dir);
        return PathBuf::from(alt).join(name);
    }
    e2e::repo_root().join(".aws-sam/build").join(dir).join("bootstrap")
}

pub fn is_stripped(path: &Path) -> Option<bool> {
    let bytes = std::fs::read(path).ok()?;
    Some(!bytes.windows(8).any(|w| w == b".symtab\0"))
}

pub fn lambda_env(stack: &Stack, function: &str) -> HashMap<String, String> {
    let mut env = stack.env.clone();
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", format!("perf-{function}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[1]0123456789abcdef".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/perf-{function}")),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
    ] {
        env.insert(k.into(), v);
    }
    env
}

pub struct Launch {
    pub child: std::process::Child,
    pub stub: stub::Stub,
    pub t0: Instant,
}

pub async fn launch(bin: &Path, env: &HashMap<String, String>, log: &Path, event: Option<String>) -> Result<Launch, String> {
    let stub = stub::Stub::start(event).await;
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.env_remove("RUST_LOG").env_remove("METRICS").envs(env).env("AWS_LAMBDA_RUNTIME_API", stub.addr.to_string());
    cmd.stdin(Stdio::null()).stdout(file.try_clone().map_err(|e| e.to_string())?).stderr(file);
    let t0 = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    track(child.id());
    Ok(Launch { child, stub, t0 })
}

pub fn finish(mut l: Launch) {
    let pid = l.child.id();
    let _ = l.child.kill();
    let _ = l.child.wait();
    untrack(pid);
    l.stub.stop();
}
