//! The interruption queue on SQS: EventBridge delivers EC2 and AWS Health events to it, and
//! [`AwsCloud`](super::provider::AwsCloud) serves them as `notices` and deletes them on
//! `acknowledge`.
//!
//! ```text
//! background task: wait for demand ─► GetQueueUrl (once, for a name) ─► ReceiveMessage
//!                  (long poll: 10 messages, wait 20 s, visibility 20 s) ─► buffer (by message id)
//! capacity pass:   notices() ─► takes the buffer, never waits; asks for the next poll
//!                  acknowledge(receipt) ─► DeleteMessage
//! ```
//!
//! A long poll waits up to 20 s for a message, so it never runs inside a capacity pass: a
//! background task polls and the pass takes what arrived. The task polls only while it is asked
//! to (each `notices` call asks for one more poll), so a replica that stops leading stops
//! receiving after one poll, and the messages it holds come back to the leader after the
//! visibility timeout. A message received twice is kept once, with its newest receipt handle
//! (the one SQS deletes by). The reader is dropped with its last clone, and its task with it.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Endpoint, classify, sdk_config};
use crate::cloud::CloudError;
use crate::cloud::interruption::{Notice, parse};

/// Most messages one ReceiveMessage returns (SQS's limit).
pub const MAX_MESSAGES: i32 = 10;
/// How long a ReceiveMessage waits for a message (SQS's longest long poll).
pub const WAIT: Duration = Duration::from_secs(20);
/// How long a received message stays hidden from other receives before it comes back.
pub const VISIBILITY: Duration = Duration::from_secs(20);
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
    shared: Arc<Shared>,
    _stop: Arc<DropGuard>,
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
        tokio::spawn(poll(client.clone(), queue.to_string(), shared.clone(), stop.clone()));
        // The first poll starts at once, before the first pass asks.
        shared.wanted.notify_one();
        Reader { client, shared, _stop: Arc::new(stop.drop_guard()) }
    }

    /// The messages received since the last call, without waiting; asks for the next poll.
    pub fn notices(&self) -> Result<Vec<Notice>, CloudError> {
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

/// The task: on each demand, one long poll into the buffer.
async fn poll(client: aws_sdk_sqs::Client, queue: String, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = shared.wanted.notified() => {}
        }
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = receive(&client, &queue, &shared) => r,
        };
        match received {
            Ok(notices) => {
                let mut buffer = shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
                for n in notices {
                    buffer.retain(|b| b.message_id != n.message_id);
                    buffer.push(n);
                }
            }
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

/// One ReceiveMessage (the queue URL resolved first when only a name is known).
async fn receive(client: &aws_sdk_sqs::Client, queue: &str, shared: &Shared) -> Result<Vec<Notice>, CloudError> {
    let url = match shared.url.get() {
        Some(u) => u.clone(),
        None => {
            let out = client.get_queue_url().queue_name(queue).send().await.map_err(|e| sqs_error("GetQueueUrl", e))?;
            let url = out.queue_url().unwrap_or_default().to_string();
            tracing::info!(%queue, %url, "interruption queue found");
            shared.url.get_or_init(|| url).clone()
        }
    };
    let out = client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(MAX_MESSAGES)
        .visibility_timeout(VISIBILITY.as_secs() as i32)
        .wait_time_seconds(WAIT.as_secs() as i32)
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

/// The reader of `queue` for this process: started on first use and kept, so a new policy
/// revision's provider reads on with the same task and the queue URL resolved once. Asking for
/// another queue (or region, or endpoint) starts a reader for it instead.
pub async fn shared(queue: &str, region: Option<String>, endpoint: Option<String>) -> Reader {
    type Key = (String, Option<String>, Option<String>);
    static CURRENT: Mutex<Option<(Key, Reader)>> = Mutex::new(None);
    let key: Key = (queue.to_string(), region.clone(), endpoint.clone());
    if let Some((k, r)) = CURRENT.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
        && *k == key
    {
        return r.clone();
    }
    let reader = Reader::start(client(region, endpoint).await, queue);
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, reader.clone()));
    reader
}
