//! The interruption queue on SQS: EventBridge delivers EC2 and AWS Health events to it, and
//! [`AwsCloud`](super::provider::AwsCloud) serves them as `notices` and deletes them on
//! `acknowledge`.
//!
//! ```text
//! background task: wait for demand ─► GetQueueUrl (once, for a name) ─► ReceiveMessage
//!                  (long poll 20 s, then 1 s while messages keep coming: up to 100 a round,
//!                  visibility 120 s) ─► buffer (by message id)
//! capacity pass:   notices() ─► takes the buffer, never waits; asks for the next round
//!                  acknowledge(receipt) ─► DeleteMessage
//! ```
//!
//! A long poll waits up to 20 s for a message, so it never runs inside a capacity pass: a
//! background task polls and the pass takes what arrived. A round reads until the queue is
//! empty (up to [`MAX_PER_ROUND`]), so a storm of warnings is handled in one pass, not ten at a
//! time. The task polls only while it is asked to (each `notices` call asks for one more
//! round), so a replica that stops leading stops receiving after one round, and the messages it
//! holds come back to the leader after the visibility timeout. A message received twice is kept
//! once, with its newest receipt handle (the one SQS deletes by). The reader is dropped with
//! its last clone, and its task with it; a task that ended (a panic) is started again by the
//! next `notices` call, which reports it.

use std::sync::{Arc, Mutex, OnceLock};

use std::time::Duration;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Endpoint, classify, sdk_config};
use crate::cloud::CloudError;
use crate::cloud::interruption::{Notice, parse};

/// Most messages one ReceiveMessage returns (SQS's limit).
pub const MAX_MESSAGES: i32 = 10;
/// Most messages one round reads: enough for a storm of warnings in one pass, few enough that
/// the pass stays short.
pub const MAX_PER_ROUND: usize = 100;
/// How long the first ReceiveMessage of a round waits for a message (SQS's longest long poll).
pub const WAIT: Duration = Duration::from_secs(20);
/// How long the next ones wait: a long poll (it asks every SQS server, where a short poll asks
/// a few) that returns at once while messages are there.
const WAIT_MORE: Duration = Duration::from_secs(1);
/// How long a received message stays hidden from other receives before it comes back. Longer
/// than a slow pass in a storm (a hundred notices, each marked, then each replacement
/// launched): a message delivered again while it is being handled would be handled twice, and
/// its first receipt handle would no longer delete it. A message left in the queue (its action
/// failed, or was put off) is read again after it.
pub const VISIBILITY: Duration = Duration::from_secs(120);
/// The wait after a failed receive (or a failed GetQueueUrl) before the next one.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What the reader and its task share.
#[derive(Debug, Default)]
struct Shared {
    /// Messages received and not yet handed to a pass, oldest first.
    buffer: Mutex<Vec<Notice>>,
    /// The last error of the task, handed to the next `notices` call that finds no message.
    error: Mutex<Option<CloudError>>,
    /// The queue URL, once known.
    url: OnceLock<String>,
    /// A pass asked for messages: the task polls once more.
    wanted: Notify,
}

/// A reader of one interruption queue. Cheap to clone; the background task ends with the last
/// clone.
#[derive(Debug, Clone)]
pub struct Reader {
    client: aws_sdk_sqs::Client,
    /// The queue's name or URL, as configured.
    queue: String,
    shared: Arc<Shared>,
    /// The background task, started again when it ended.
    task: Arc<Mutex<JoinHandle<()>>>,
    /// Ends the task; cancelled when the last clone drops `_guard`.
    stop: CancellationToken,
    _guard: Arc<DropGuard>,
}

/// Whether `queue` is a queue URL rather than a name.
pub fn is_url(queue: &str) -> bool {
    queue.starts_with("https://") || queue.starts_with("http://")
}

/// An SQS client from the standard chain, with `endpoint` overriding EC2's endpoint override
/// (SQS is another service) and the region kept.
pub async fn client(region: Option<String>, endpoint: Option<String>) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(&Endpoint { url: endpoint, region }).await)
}

impl Reader {
    /// Starts reading `queue` (a name, resolved with GetQueueUrl, or a URL) in a background task
    /// on the current Tokio runtime.
    pub fn start(client: aws_sdk_sqs::Client, queue: &str) -> Reader {
        let shared = Arc::new(Shared::default());
        if is_url(queue) {
            let _ = shared.url.set(queue.to_string());
        }
        let stop = CancellationToken::new();
        let task = tokio::spawn(poll(client.clone(), queue.to_string(), shared.clone(), stop.clone()));
        // The first poll starts at once, before the first pass asks.
        shared.wanted.notify_one();
        Reader {
            client,
            queue: queue.to_string(),
            shared,
            task: Arc::new(Mutex::new(task)),
            _guard: Arc::new(stop.clone().drop_guard()),
            stop,
        }
    }

    /// The messages received since the last call, without waiting; asks for the next round.
    /// When the background task has ended (it panicked), it is started again on the current
    /// runtime and the call is an error: no message is read until it runs.
    pub fn notices(&self) -> Result<Vec<Notice>, CloudError> {
        {
            let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
            if task.is_finished() {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return Err(CloudError::Api("the interruption queue reader has no runtime to run on".into()));
                };
                let (client, queue) = (self.client.clone(), self.queue.clone());
                *task = runtime.spawn(poll(client, queue, self.shared.clone(), self.stop.clone()));
                self.shared.wanted.notify_one();
                return Err(CloudError::Api("the interruption queue reader had stopped; started again".into()));
            }
        }
        let taken = std::mem::take(&mut *self.shared.buffer.lock().unwrap_or_else(|p| p.into_inner()));
        self.shared.wanted.notify_one();
        if taken.is_empty()
            && let Some(e) = self.shared.error.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            return Err(e);
        }
        Ok(taken)
    }

    /// Whether messages are waiting to be taken by [`Reader::notices`].
    pub fn waiting(&self) -> bool {
        !self.shared.buffer.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Deletes a message by its receipt handle.
    pub async fn acknowledge(&self, receipt: &str) -> Result<(), CloudError> {
        let Some(url) = self.shared.url.get() else {
            return Err(CloudError::Api("DeleteMessage: the queue URL is not known yet".into()));
        };
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessage", e))?;
        Ok(())
    }
}

/// The task: on each demand, one round of receives into the buffer.
async fn poll(client: aws_sdk_sqs::Client, queue: String, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = shared.wanted.notified() => {}
        }
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = round(&client, &queue, &shared) => r,
        };
        match received {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, %queue, "reading the interruption queue; retrying");
                *shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_AFTER) => {}
                }
                shared.wanted.notify_one();
            }
        }
    }
}

/// One round: receives until the queue is empty or [`MAX_PER_ROUND`] messages were read, each
/// batch into the buffer as it comes (the queue URL resolved first when only a name is known).
async fn round(client: &aws_sdk_sqs::Client, queue: &str, shared: &Shared) -> Result<(), CloudError> {
    let url = match shared.url.get() {
        Some(u) => u.clone(),
        None => {
            let out = client.get_queue_url().queue_name(queue).send().await.map_err(|e| sqs_error("GetQueueUrl", e))?;
            let url = out.queue_url().unwrap_or_default().to_string();
            if url.is_empty() {
                return Err(CloudError::Api(format!("GetQueueUrl: no URL for the interruption queue {queue}")));
            }
            tracing::info!(%queue, %url, "interruption queue found");
            shared.url.get_or_init(|| url).clone()
        }
    };
    let (mut read, mut wait) = (0, WAIT);
    while read < MAX_PER_ROUND {
        let most = MAX_MESSAGES.min((MAX_PER_ROUND - read) as i32);
        let notices = receive(client, &url, most, wait).await?;
        if notices.is_empty() {
            break;
        }
        read += notices.len();
        wait = WAIT_MORE;
        let mut buffer = shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
        for n in notices {
            buffer.retain(|b| b.message_id != n.message_id);
            buffer.push(n);
        }
    }
    Ok(())
}

/// One ReceiveMessage of at most `most` messages, waiting up to `wait` for the first.
async fn receive(
    client: &aws_sdk_sqs::Client,
    url: &str,
    most: i32,
    wait: Duration,
) -> Result<Vec<Notice>, CloudError> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(most)
        .visibility_timeout(VISIBILITY.as_secs() as i32)
        .wait_time_seconds(wait.as_secs() as i32)
        .send()
        .await
        .map_err(|e| sqs_error("ReceiveMessage", e))?;
    Ok(out
        .messages()
        .iter()
        .filter_map(|m| {
            let receipt = m.receipt_handle()?.to_string();
            let message_id = m.message_id().unwrap_or_default().to_string();
            Some(Notice { receipt, message_id, event: parse(m.body().unwrap_or_default()) })
        })
        .collect())
}

/// A typed error for an SQS call: a missing queue says what to check; the rest as EC2's.
fn sqs_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    call: &str,
    e: SdkError<E, R>,
) -> CloudError {
    let code = super::error_code(&e).unwrap_or_default().to_string();
    if code == "AWS.SimpleQueueService.NonExistentQueue" || code == "QueueDoesNotExist" {
        return CloudError::InvalidConfig(format!(
            "{call}: the interruption queue does not exist; check aws.interruption.queue (a name or URL) and the region"
        ));
    }
    classify(call, e)
}
