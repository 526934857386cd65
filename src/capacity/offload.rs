//! Heavy decisions off the async workers. A disruption decision over thousands of nodes takes
//! hundreds of milliseconds; run on a worker thread of a two-worker runtime it would stall
//! `/healthz`, the lease renewals and the reflectors that share it. On a multi-threaded runtime
//! the worker hands its other tasks to the rest of the pool for the duration
//! (`block_in_place`); on a single-threaded one (tests, tools) the decision runs in place.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs a pure decision without holding up the tasks that share this worker.
pub fn decide<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
