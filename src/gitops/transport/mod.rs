//! The wires under libgit2's fetch. libgit2 speaks Git's protocol; these carry its bytes: `http`
//! and `https` through the daemon's own HTTP client (hyper and rustls, with the system's trusted
//! roots, as every AWS and Kubernetes call has), `ssh` through the OpenSSH client. So libgit2 is
//! built without a TLS or SSH library of its own. `git://` and local paths stay with libgit2.
//!
//! libgit2 picks a transport by the URL's scheme for the whole process; the credentials of the
//! fetch under way reach it through [`with`], on the thread that fetches.

mod http;
mod ssh;

pub use http::ca_certificates;

use std::cell::RefCell;
use std::sync::{Arc, Once};

use git2::transport::{self, Transport};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use super::creds::Auth;

thread_local! {
    static AUTH: RefCell<Option<Auth>> = const { RefCell::new(None) };
}

/// Runs `fetch`, a libgit2 fetch on this thread, with `auth` for the transports it opens.
pub fn with<T>(auth: &Auth, fetch: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            AUTH.with(|a| a.borrow_mut().take());
        }
    }
    register();
    AUTH.with(|a| *a.borrow_mut() = Some(auth.clone()));
    let _clear = Clear;
    fetch()
}

fn current() -> Auth {
    AUTH.with(|a| a.borrow().clone()).unwrap_or_default()
}

#[allow(unsafe_code)]
fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["http", "https"] {
            let factory = |remote: &git2::Remote<'_>| {
                Transport::smart(remote, true, http::Http::new(current(), remote.url().ok())?)
            };
            // SAFETY: registered once, and every fetch waits for `call_once` before creating a
            // transport, so no transport is created while the table changes.
            if let Err(e) = unsafe { transport::register(scheme, factory) } {
                tracing::error!(scheme, error = %e, "cannot register the Git transport");
            }
        }
        for scheme in ["ssh", "ssh+git", "git+ssh"] {
            let factory = |remote: &git2::Remote<'_>| Transport::smart(remote, false, ssh::Ssh::new(current()));
            // SAFETY: as above.
            if let Err(e) = unsafe { transport::register(scheme, factory) } {
                tracing::error!(scheme, error = %e, "cannot register the Git transport");
            }
        }
    });
}

/// Where the HTTP transport's futures run: the daemon's runtime when the fetch runs on one of
/// its blocking threads (a multi-thread runtime, whose workers drive the sockets and timers
/// whatever else runs), else a runtime of its own.
#[derive(Clone)]
enum Rt {
    Shared(Handle),
    Own(Arc<Runtime>),
}

impl Rt {
    fn new() -> std::io::Result<Rt> {
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => Ok(Rt::Shared(h)),
            _ => {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                Ok(Rt::Own(Arc::new(rt)))
            }
        }
    }

    /// `f`'s output, or None when it takes longer than `limit`. The timer is made inside the
    /// runtime, which it needs.
    fn within<F: std::future::Future>(&self, limit: std::time::Duration, f: F) -> Option<F::Output> {
        let timed = async move { tokio::time::timeout(limit, f).await.ok() };
        match self {
            Rt::Shared(h) => h.block_on(timed),
            Rt::Own(rt) => rt.block_on(timed),
        }
    }
}

fn io_error(message: impl Into<String>) -> std::io::Error {
    std::io::Error::other(message.into())
}

/// An error and its causes, joined: hyper's own message alone says little ("client error").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transport's futures complete from a blocking thread of either kind of runtime, and
    /// from no runtime at all.
    #[test]
    fn futures_run_whatever_runtime_the_fetch_is_on() {
        let ms = std::time::Duration::from_millis;
        let wait = move || {
            let rt = Rt::new().unwrap();
            assert_eq!(rt.within(ms(500), async { tokio::time::sleep(ms(5)).await }), Some(()));
            assert_eq!(rt.within(ms(5), async { tokio::time::sleep(ms(500)).await }), None);
        };
        wait();
        for multi in [true, false] {
            let mut builder = if multi {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            };
            let rt = builder.enable_all().build().unwrap();
            rt.block_on(async { tokio::task::spawn_blocking(wait).await.unwrap() });
        }
    }
}
