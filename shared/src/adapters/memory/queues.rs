//! Queues in memory: what was sent, and every visibility change requested.

use crate::ids::SubscriptionId;
use crate::model::DeliveryTask;
use crate::ports::*;
use async_trait::async_trait;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct MemoryQueues {
    pub deliveries: Mutex<Vec<DeliveryTask>>,
    pub visibility: Mutex<Vec<(QueueName, MessageHandle, Duration)>>,
    pub events: Mutex<Vec<String>>,
    pub dead_events: Mutex<Vec<(String, String)>>,
    /// Tasks in the delivery DLQ (tests put them there).
    pub dead_tasks: Mutex<Vec<Peeked>>,
    /// Entries per `SendMessageBatch` call that SQS would have received (at most 10 each).
    pub batches: Mutex<Vec<usize>>,
    /// Tasks of this subscription are refused, as SQS may refuse single entries of a batch.
    pub refuse: Mutex<Option<SubscriptionId>>,
}

impl MemoryQueues {
    /// The tasks sent so far, and forgets them.
    pub fn take_tasks(&self) -> Vec<DeliveryTask> {
        std::mem::take(&mut *self.deliveries.lock().unwrap())
    }
}

#[async_trait]
impl Queues for MemoryQueues {
    async fn send_tasks(&self, tasks: &[DeliveryTask]) -> PortResult<Vec<usize>> {
        self.batches.lock().unwrap().extend(tasks.chunks(10).map(<[_]>::len));
        let refuse = self.refuse.lock().unwrap().clone();
        let mut failed = Vec::new();
        for (i, task) in tasks.iter().enumerate() {
            if refuse.as_ref() == Some(&task.delivery_id().subscription()) {
                failed.push(i);
            } else {
                self.deliveries.lock().unwrap().push(task.clone());
            }
        }
        Ok(failed)
    }

    async fn set_visibility(&self, queue: QueueName, changes: &[(MessageHandle, Duration)]) -> PortResult<Vec<usize>> {
        self.visibility.lock().unwrap().extend(changes.iter().map(|(h, d)| (queue, h.clone(), *d)));
        Ok(Vec::new())
    }

    async fn publish_event(&self, body: &str, _source: crate::ids::EventSource) -> PortResult<()> {
        self.events.lock().unwrap().push(body.to_owned());
        Ok(())
    }

    async fn dead_letter_event(&self, body: &str, reason: &str, _source_message_id: &str) -> PortResult<()> {
        self.dead_events.lock().unwrap().push((body.to_owned(), reason.to_owned()));
        Ok(())
    }

    async fn peek_dead_tasks(&self, max: usize, _hide: Duration) -> PortResult<Vec<Peeked>> {
        Ok(self.dead_tasks.lock().unwrap().iter().take(max).cloned().collect())
    }
}
