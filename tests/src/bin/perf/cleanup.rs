//! Child processes we start: killed by PID if the benchmark panics (release builds abort on panic).

use std::process::Command;
use std::sync::Mutex;

static TRACKED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn track(pid: u32) {
    TRACKED.lock().unwrap().push(pid);
}

pub fn untrack(pid: u32) {
    TRACKED.lock().unwrap().retain(|p| *p != pid);
}

pub fn install_panic_cleanup() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(pids) = TRACKED.try_lock() {
            for pid in pids.iter() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
        default(info);
    }));
}
