//! Task supervision. The daemon's tasks run until the shutdown signal; none of them is meant to
//! end before. One that does — it returned, or it panicked — is not restarted (its state, and
//! what it shares with the others, cannot be trusted): the daemon is marked failed, so
//! `/healthz` and `/readyz` answer 503 naming the task, the other tasks finish the pass they are
//! in, and [`Supervisor::run_until`] returns the failure; `capstan run` exits 1. A restart is
//! left to what runs the process (Kubernetes restarts the container).
//!
//! ```text
//! spawn(name, task) ─┐
//! signal ────────────┼─► stop workers ─► wait (GRACE) ─► stop the last (HTTP) ─► wait ─► Ok / Err(TaskFailed)
//! a task ends ───────┘ (marked failed first)
//! ```

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the tasks get to finish the pass in progress once asked to stop.
pub const GRACE: Duration = Duration::from_secs(30);

/// Set once, when a task has failed: the health endpoints report it.
#[derive(Debug, Clone, Default)]
pub struct Failure(Arc<OnceLock<String>>);

impl Failure {
    /// Records why the daemon failed; the first reason stays.
    pub fn set(&self, reason: String) {
        let _ = self.0.set(reason);
    }

    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// A task that ended while it should have kept running, or did not stop in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {task} task {reason}")]
pub struct TaskFailed {
    /// The task's name, as given to [`Supervisor::spawn`].
    pub task: &'static str,
    /// What happened: `panicked: <message>`, `returned`, or `did not stop within 30s`.
    pub reason: String,
}

impl TaskFailed {
    fn of(task: &'static str, ended: Result<(), JoinError>) -> TaskFailed {
        let reason = match ended {
            Ok(()) => "returned while the daemon was running".to_string(),
            Err(e) if e.is_panic() => format!("panicked: {}", panic_message(e.into_panic())),
            Err(_) => "was cancelled".to_string(),
        };
        TaskFailed { task, reason }
    }
}

/// The message a panic was raised with.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast_ref::<&str>().map_or("(no message)".to_string(), |s| s.to_string()),
    }
}

type Ended = (&'static str, bool, Result<(), JoinError>);

/// Watches the daemon's tasks. Workers stop on `stop`; the last ones (the HTTP server, so that
/// the health endpoints report a failure while the others finish) on `stop_last`.
pub struct Supervisor {
    tx: mpsc::UnboundedSender<Ended>,
    rx: mpsc::UnboundedReceiver<Ended>,
    /// The tasks still running, and whether each is stopped last.
    running: Vec<(&'static str, bool)>,
    failure: Failure,
    stop: CancellationToken,
    stop_last: CancellationToken,
}

impl Supervisor {
    pub fn new(failure: Failure, stop: CancellationToken, stop_last: CancellationToken) -> Supervisor {
        let (tx, rx) = mpsc::unbounded_channel();
        Supervisor { tx, rx, running: Vec::new(), failure, stop, stop_last }
    }

    /// Runs a worker, which returns once `stop` is cancelled.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.start(name, false, task);
    }

    /// Runs a task that returns once `stop_last` is cancelled, after the workers have ended.
    pub fn spawn_last(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.start(name, true, task);
    }

    fn start(&mut self, name: &'static str, last: bool, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let tx = self.tx.clone();
        self.running.push((name, last));
        tokio::spawn(async move {
            let _ = tx.send((name, last, handle.await));
        });
    }

    /// Waits for `shutdown` or for a task to end, then stops every task and waits for them (at
    /// most [`GRACE`]). `Err` names the first task that failed.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), TaskFailed> {
        let mut failed = None;
        tokio::select! {
            _ = shutdown => tracing::info!("shutting down: finishing the passes in progress"),
            Some((task, _, ended)) = self.rx.recv() => {
                self.running.retain(|(n, _)| *n != task);
                failed = Some(self.fail(TaskFailed::of(task, ended)));
            }
        }
        let deadline = Instant::now() + GRACE;
        self.stop.cancel();
        self.drain(false, deadline, &mut failed).await;
        self.stop_last.cancel();
        self.drain(true, deadline, &mut failed).await;
        failed.map_or(Ok(()), Err)
    }

    /// Waits until no task of the group (`last` or not) runs, or until `deadline`.
    async fn drain(&mut self, last: bool, deadline: Instant, failed: &mut Option<TaskFailed>) {
        let waiting = |running: &[(&str, bool)]| running.iter().any(|(_, l)| last || !*l);
        while waiting(&self.running) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((task, _, ended))) => {
                    self.running.retain(|(n, _)| *n != task);
                    if let Err(e) = ended {
                        let f = self.fail(TaskFailed::of(task, Err(e)));
                        failed.get_or_insert(f);
                    }
                }
                Ok(None) => return,
                Err(_) => {
                    let names: Vec<&str> = self.running.iter().map(|(n, _)| *n).collect();
                    let f = TaskFailed { task: names[0], reason: format!("did not stop within {}s", GRACE.as_secs()) };
                    tracing::error!(tasks = ?names, "tasks did not stop in time; exiting without them");
                    failed.get_or_insert(f);
                    self.running.clear();
                    return;
                }
            }
        }
    }

    /// Marks the daemon failed and logs why.
    fn fail(&self, f: TaskFailed) -> TaskFailed {
        tracing::error!(task = f.task, reason = %f.reason, "a task failed; the daemon stops and exits 1");
        self.failure.set(f.to_string());
        f
    }
}
