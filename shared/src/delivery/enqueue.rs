//! Where delivery tasks go onto the delivery queue: fan-out's, the API's redeliveries and
//! recoveries, and the sweeper's re-sends all enqueue through [`send_all`].

use crate::deps::Deps;
use crate::model::DeliveryTask;

/// Sends tasks, retrying once the entries SQS refused; returns the indices of those still not
/// sent (all of them after an error of the call itself).
pub async fn send_all(deps: &Deps, tasks: &[DeliveryTask]) -> Vec<usize> {
    if tasks.is_empty() {
        return Vec::new();
    }
    let failed = match deps.queues.send_tasks(tasks).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, tasks = tasks.len(), "cannot enqueue delivery tasks");
            return (0..tasks.len()).collect();
        }
    };
    if failed.is_empty() {
        return failed;
    }
    let again: Vec<DeliveryTask> = failed.iter().map(|&i| tasks[i].clone()).collect();
    match deps.queues.send_tasks(&again).await {
        Ok(still) => still.iter().map(|&j| failed[j]).collect(),
        Err(e) => {
            tracing::error!(error = %e, tasks = again.len(), "cannot enqueue delivery tasks");
            failed
        }
    }
}
