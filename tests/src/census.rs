//! The invariant checker: reads the ledger, both queues and both DLQs of a stack and accounts
//! for every matched (event, subscription) pair. Every pair must be terminal (delivered, failed,
//! cancelled) or owned: by a message still on a queue, by its task in the delivery DLQ (then it
//! is `dead_lettered` or has no record yet), or by its event in the events DLQ (no record yet).
//! Run after the queues settled, an owner "still on a queue" can only be one that is in flight,
//! which [`Census::assert_sound`] allows only while the queues are not empty.

use crate::TestStack;
use futures::StreamExt;
use shared::ids::DeliveryId;
use shared::model::{DeliveryStatus, DeliveryTask};
use shared::ports::Read;
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Default)]
pub struct Census {
    pub pairs: usize,
    /// Pairs by their delivery's status (`none`: no record).
    pub by_status: BTreeMap<String, usize>,
    /// Attempts recorded over all pairs.
    pub attempts: u64,
    pub tasks_in_delivery_dlq: usize,
    pub events_in_events_dlq: usize,
    /// Messages on the two main queues (visible or in flight) when counted.
    pub in_queues: u64,
    /// Pairs neither terminal nor owned: each one is a delivery lost.
    pub orphans: Vec<String>,
}

/// Reads every message of a DLQ (and makes them visible again afterwards).
pub async fn dlq_bodies(stack: &TestStack, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut handles = Vec::new();
    loop {
        let out = stack.sqs.receive_message().queue_url(url).max_number_of_messages(10).visibility_timeout(60).wait_time_seconds(1).send().await.expect("receive from DLQ");
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            bodies.push(m.body.unwrap_or_default());
            handles.extend(m.receipt_handle);
        }
    }
    for h in handles {
        let _ = stack.sqs.change_message_visibility().queue_url(url).receipt_handle(h).visibility_timeout(0).send().await;
    }
    bodies
}

impl Census {
    /// Accounts for `pairs` = (event id, subscription id) of events published with
    /// [`TestStack::envelope`].
    pub async fn take(stack: &TestStack, pairs: &[(String, String)]) -> Self {
        let mut c = Census { pairs: pairs.len(), ..Default::default() };
        let dead_tasks: HashSet<String> = dlq_bodies(stack, &stack.config.delivery_dlq_url)
            .await
            .iter()
            .filter_map(|b| DeliveryTask::parse(b).ok())
            .map(|t| t.delivery_id().to_string())
            .collect();
        let dead_events: HashSet<String> = dlq_bodies(stack, &stack.config.events_dlq_url)
            .await
            .iter()
            .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            .filter_map(|v| v["event_id"].as_str().map(str::to_owned))
            .collect();
        c.tasks_in_delivery_dlq = dead_tasks.len();
        c.events_in_events_dlq = dead_events.len();
        c.in_queues = stack.queue_depth(&stack.config.events_queue_url).await + stack.queue_depth(&stack.config.delivery_queue_url).await;
        let ledger = &stack.runner.deps.ledger;
        let heads: Vec<_> = futures::stream::iter(pairs.iter().map(|(e, s)| {
            let id: DeliveryId = TestStack::delivery_id(e, s);
            async move { (id.clone(), ledger.head(&id, Read::Strong).await.expect("read the ledger")) }
        }))
        .buffered(32)
        .collect()
        .await;
        for ((event, _), (id, head)) in pairs.iter().zip(heads) {
            let status = head.as_ref().map(|h| h.status.public());
            let name = status.map_or("none".to_owned(), |s| serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default());
            *c.by_status.entry(name).or_default() += 1;
            c.attempts += head.as_ref().map_or(0, |h| u64::from(h.attempts));
            let owned = match status {
                Some(s) if s.is_terminal() => true,
                Some(DeliveryStatus::DeadLettered) => dead_tasks.contains(id.as_str()),
                None => dead_tasks.contains(id.as_str()) || dead_events.contains(event) || c.in_queues > 0,
                Some(_) => dead_tasks.contains(id.as_str()) || c.in_queues > 0,
            };
            if !owned {
                c.orphans.push(format!("{id} ({})", status.map_or("no record".into(), |s| format!("{s:?}"))));
            }
        }
        c
    }

    pub fn count(&self, status: &str) -> usize {
        self.by_status.get(status).copied().unwrap_or(0)
    }

    /// Fails on any pair that is neither terminal nor owned.
    pub fn assert_sound(&self) {
        println!("census: {self}");
        assert!(self.orphans.is_empty(), "{} pairs lost (neither terminal nor owned), e.g. {:?}", self.orphans.len(), &self.orphans[..self.orphans.len().min(5)]);
    }
}

impl std::fmt::Display for Census {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pairs:", self.pairs)?;
        for (k, v) in &self.by_status {
            write!(f, " {v} {k},")?;
        }
        write!(
            f,
            " {} attempts; {} tasks in the delivery DLQ, {} events in the events DLQ, {} messages on the queues; {} orphans",
            self.attempts,
            self.tasks_in_delivery_dlq,
            self.events_in_events_dlq,
            self.in_queues,
            self.orphans.len()
        )
    }
}
