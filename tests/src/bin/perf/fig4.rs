//! Figure 4: cold start: bootstrap sizes and exec -> first `GET …/invocation/next` (runtime API stub)

use crate::bootstrap::{bootstrap_path, finish, is_stripped, lambda_env, launch, FUNCTIONS};
use crate::format::{section, verdict};
use crate::procfs;
use crate::stacks::Stack;
use crate::stats::median;
use crate::summary::Summary;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

pub struct ColdRun {
    pub ms: f64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

pub async fn cold_start(bin: &Path, env: &HashMap<String, String>, log: &Path) -> Result<ColdRun, String> {
    let mut l = launch(bin, env, log, None).await?;
    let pid = l.child.id();
    let res = match l.stub.first_next(Duration::from_secs(20)).await {
        Some(t) => Ok(ColdRun {
            ms: (t - l.t0).as_secs_f64() * 1e3,
            rss_kb: procfs::status_kb(pid, "VmRSS:").unwrap_or(0),
            hwm_kb: procfs::status_kb(pid, "VmHWM:").unwrap_or(0),
        }),
        None => Err(format!("no GET /next within 20 s (exit: {:?}, init error: {:?}; log {})", l.child.try_wait().ok().flatten(), l.stub.error(), log.display())),
    };
    finish(l);
    res
}

/// Per function: name, size, stripped, runs, error.
pub type F4Row = (String, Option<u64>, Option<bool>, Vec<ColdRun>, Option<String>);

pub struct F4 {
    pub rows: Vec<F4Row>,
}

pub async fn fig4(stack: &Stack, runs: usize) -> F4 {
    section("Figure 4: cold start: bootstrap size (sam build) and exec -> first GET /2018-06-01/runtime/invocation/next");
    let logdir = e2e::repo_root().join("target/perf");
    let _ = std::fs::create_dir_all(&logdir);
    let mut rows = Vec::new();
    for (function, dir) in FUNCTIONS {
        let bin = bootstrap_path(dir);
        let size = std::fs::metadata(&bin).ok().map(|m| m.len());
        if size.is_none() {
            rows.push((function.to_owned(), None, None, Vec::new(), Some(format!("{} absent (bash scripts/sam.sh build)", bin.display()))));
            continue;
        }
        let env = lambda_env(stack, function);
        let log = logdir.join(format!("coldstart-{function}.log"));
        let _ = std::fs::remove_file(&log);
        let mut samples = Vec::new();
        let mut err = None;
        for i in 0..=runs {
            match cold_start(&bin, &env, &log).await {
                Ok(r) if i > 0 => samples.push(r),
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        rows.push((function.to_owned(), size, is_stripped(&bin), samples, err));
    }
    if let Ok(alt) = std::env::var("PERF_BOOTSTRAP_DIR") {
        println!("  bootstraps from PERF_BOOTSTRAP_DIR={alt}");
    }
    println!("  stub: a loopback HTTP server per run; env: AWS_LAMBDA_* (128 MB), the stack's Config variables, AWS_ENDPOINT_URL (LocalStack);");
    println!("  the fan-out and delivery functions read their queue's attributes (GetQueueAttributes) before their first /next. {runs} runs after 1 warm-up, page cache warm.");
    println!("  {:<9} {:>10} {:>9} {:>11} {:>9} {:>9} {:>12} {:>12}", "function", "size MB", "stripped", "median ms", "min ms", "max ms", "RSS@next MB", "HWM@next MB");
    for (f, size, stripped, runs, err) in &rows {
        let ms: Vec<f64> = runs.iter().map(|r| r.ms).collect();
        let rss: Vec<f64> = runs.iter().map(|r| r.rss_kb as f64 / 1024.0).collect();
        let hwm: Vec<f64> = runs.iter().map(|r| r.hwm_kb as f64 / 1024.0).collect();
        let size_mb = size.map(|s| s as f64 / 1e6).unwrap_or(f64::NAN);
        println!(
            "  {:<9} {:>10.2} {:>9} {:>11.1} {:>9.1} {:>9.1} {:>12.1} {:>12.1}   [goal <= 6 MB: {}, <= 30 ms: {}]",
            f,
            size_mb,
            stripped.map(|s| if s { "yes" } else { "no" }).unwrap_or("?"),
            median(&ms),
            ms.iter().cloned().fold(f64::INFINITY, f64::min),
            ms.iter().cloned().fold(0.0, f64::max),
            median(&rss),
            median(&hwm),
            if size.is_some() { verdict(size_mb, 6.0) } else { "n/a" },
            if ms.is_empty() { "n/a" } else { verdict(median(&ms), 30.0) }
        );
        if let Some(e) = err {
            println!("  {f}: {e}");
        }
    }
    F4 { rows }
}

/// Figure 4 and its rows of the summary.
pub async fn run(stack: &Stack, runs: usize, summary: &mut Summary) {
    let f4 = fig4(stack, runs).await;
    for (f, size, _, runs, _) in &f4.rows {
        let ms: Vec<f64> = runs.iter().map(|r| r.ms).collect();
        if let Some(s) = size {
            summary.add(&format!("4 bootstrap size ({f})"), format!("{:.2} MB", *s as f64 / 1e6), "<= 6 MB", verdict(*s as f64 / 1e6, 6.0));
        }
        if !ms.is_empty() {
            summary.add(&format!("4 cold start to /next ({f})"), format!("{:.1} ms median", median(&ms)), "<= 30 ms", verdict(median(&ms), 30.0));
        }
    }
}
