//! Fault injection for the kill tests: named points on the write paths of fan-out, delivery and
//! the API's long actions. A test arms a point; the handler that reaches it stops there for good
//! (as if its process were killed) and the test is told, so it can drop the runner and start a
//! new one. Unarmed, a point costs one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The points, in the order a delivery passes them.
pub const POINTS: &[&str] = &[
    "fanout.before_send",
    "fanout.after_send",
    "delivery.after_post",
    "delivery.after_append",
    "delivery.after_visibility",
    "recover.after_mark",
    "recover.after_send",
    "redeliver.after_mark",
];

#[derive(Clone, Default)]
pub struct Faults(Arc<Inner>);

#[derive(Default)]
struct Inner {
    any: AtomicBool,
    /// Armed points: how many passes to let through before stopping, and who to tell.
    armed: Mutex<HashMap<&'static str, (usize, Arc<Notify>)>>,
}

impl Faults {
    /// Arms `point`: the `skip + 1`-th handler to reach it stops there. Returns the notification.
    pub fn arm(&self, point: &'static str, skip: usize) -> Arc<Notify> {
        assert!(POINTS.contains(&point), "unknown fault point {point}");
        let notify = Arc::new(Notify::new());
        self.0.armed.lock().unwrap().insert(point, (skip, notify.clone()));
        self.0.any.store(true, Ordering::SeqCst);
        notify
    }

    pub fn disarm_all(&self) {
        self.0.armed.lock().unwrap().clear();
        self.0.any.store(false, Ordering::SeqCst);
    }

    /// A fault point: returns at once unless `point` is armed and its turn has come; then never.
    pub async fn point(&self, point: &'static str) {
        if !self.0.any.load(Ordering::Relaxed) {
            return;
        }
        let stop = {
            let mut armed = self.0.armed.lock().unwrap();
            match armed.get_mut(point) {
                Some((0, notify)) => {
                    let n = notify.clone();
                    armed.remove(point);
                    Some(n)
                }
                Some((skip, _)) => {
                    *skip -= 1;
                    None
                }
                None => None,
            }
        };
        if let Some(n) = stop {
            tracing::warn!(point, "fault point reached: this handler stops here");
            n.notify_one();
            std::future::pending::<()>().await;
        }
    }
}
