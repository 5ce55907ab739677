//! Machine and run description

use std::process::Command;

pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_owned()).unwrap_or_else(|| "?".into());
    format!("{cpus} CPUs ({model}), {:.1} GiB RAM", mem_kb as f64 / 1024.0 / 1024.0)
}

pub fn git_head() -> String {
    let out = Command::new("git").args(["-C", &e2e::repo_root().to_string_lossy(), "rev-parse", "--short", "HEAD"]).output();
    let dirty = Command::new("git").args(["-C", &e2e::repo_root().to_string_lossy(), "status", "--porcelain", "--untracked-files=no"]).output();
    let head = out.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    let dirty = dirty.ok().is_some_and(|o| !o.stdout.is_empty());
    format!("{head}{}", if dirty { " (with uncommitted changes)" } else { "" })
}
