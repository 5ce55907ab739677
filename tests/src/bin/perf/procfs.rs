//! /proc: CPU time per thread (schedstat, ns) and of the process (utime+stime), memory.

use std::collections::HashMap;

pub fn tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn thread_ns(tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn threads() -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            if let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
                out.insert(tid, thread_ns(tid));
            }
        }
    }
    out
}

/// utime + stime of the whole process, exited threads included (what getrusage reports), in
/// ns; the kernel counts it in clock ticks (10 ms).
pub fn process_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (field(11) + field(12)) * 10_000_000
}

pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CpuDelta {
    /// Every thread but the excluded one (the loopback receiver), ns.
    pub client_ns: u64,
    /// The excluded thread, ns.
    pub excluded_ns: u64,
    /// utime+stime of the process, ns (10 ms resolution).
    pub process_ns: u64,
}

pub struct Snap {
    threads: HashMap<u32, u64>,
    process: u64,
}

impl Snap {
    pub fn now() -> Self {
        Self { threads: threads(), process: process_ns() }
    }

    pub fn since(&self, exclude: u32) -> CpuDelta {
        let mut d = CpuDelta { process_ns: process_ns().saturating_sub(self.process), ..Default::default() };
        for (tid, ns) in threads() {
            let delta = ns.saturating_sub(*self.threads.get(&tid).unwrap_or(&0));
            if tid == exclude {
                d.excluded_ns += delta;
            } else {
                d.client_ns += delta;
            }
        }
        d
    }
}
