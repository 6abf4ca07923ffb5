//! Group commit for the inbox: concurrent deliveries queue here, and a committer writes
//! whatever is queued (up to `max_items`, waiting at most `max_wait` for more) in one store
//! transaction, then answers each delivery. Ingest is then bounded by flushes per batch, not
//! one flush per request — which on SQLite (one writer, `synchronous=FULL`) is the ceiling.

use patchbay_store::{NewWebhookEvent, WebhookInsert, WebhookStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};

/// How the batcher groups deliveries.
#[derive(Clone, Copy, Debug)]
pub struct BatchSettings {
    /// The most deliveries one transaction commits.
    pub max_items: usize,
    /// How long a committer waits for more deliveries once it has one (and nothing else is
    /// queued). Zero commits what is queued at once.
    pub max_wait: Duration,
    /// Transactions in flight at once (1 on SQLite, whose writer is one connection anyway).
    pub committers: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self { max_items: 256, max_wait: Duration::from_millis(1), committers: 1 }
    }
}

/// A batch commit failed: every delivery in it got this, and none was stored.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the inbox commit failed: {0}")]
pub struct CommitFailed(pub String);

struct Item {
    event: NewWebhookEvent,
    reply: oneshot::Sender<Result<WebhookInsert, CommitFailed>>,
}

/// The handle deliveries are submitted through (cheap to clone). The committers stop when
/// every handle is dropped.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Item>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts the committers on the current Tokio runtime.
    pub fn spawn(store: Arc<dyn WebhookStore>, settings: BatchSettings) -> Self {
        let max_items = settings.max_items.max(1);
        let (queue, receiver) = mpsc::channel(max_items * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..settings.committers.max(1) {
            tokio::spawn(commit_loop(store.clone(), receiver.clone(), max_items, settings.max_wait));
        }
        Self { queue }
    }

    /// Commits `event` with whatever else is queued; answers once the transaction is durable.
    pub async fn submit(&self, event: NewWebhookEvent) -> Result<WebhookInsert, CommitFailed> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Item { event, reply }).await.map_err(|_| CommitFailed("the inbox batcher stopped".into()))?;
        answer.await.map_err(|_| CommitFailed("the inbox batcher stopped".into()))?
    }
}

async fn commit_loop(
    store: Arc<dyn WebhookStore>,
    receiver: Arc<Mutex<mpsc::Receiver<Item>>>,
    max_items: usize,
    max_wait: Duration,
) {
    loop {
        let Some(batch) = next_batch(&receiver, max_items, max_wait).await else { return };
        let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|i| (i.event, i.reply)).unzip();
        let size = events.len();
        match store.insert_webhook_events(events).await {
            Ok(outcomes) if outcomes.len() == size => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Ok(_) => fail_all(replies, "the store answered a different number of outcomes"),
            Err(e) => {
                tracing::warn!(error = %e, batch = size, "inbox commit failed; the senders get 503");
                fail_all(replies, &e.to_string());
            }
        }
    }
}

fn fail_all(replies: Vec<oneshot::Sender<Result<WebhookInsert, CommitFailed>>>, cause: &str) {
    for reply in replies {
        let _ = reply.send(Err(CommitFailed(cause.to_owned())));
    }
}

/// The next batch: waits for one delivery, takes what is already queued, then waits up to
/// `max_wait` for more while under `max_items`. `None` once every sender is gone.
async fn next_batch(receiver: &Mutex<mpsc::Receiver<Item>>, max_items: usize, max_wait: Duration) -> Option<Vec<Item>> {
    // One committer gathers at a time; the others commit meanwhile.
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max_items {
        match receiver.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    if !max_wait.is_zero() {
        let deadline = tokio::time::Instant::now() + max_wait;
        while batch.len() < max_items {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(item)) => batch.push(item),
                _ => break,
            }
        }
    }
    Some(batch)
}
