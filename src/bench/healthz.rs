//! `/healthz` latency while a large disruption decision runs on the daemon's runtime (two
//! workers, as `capstan run` has): a thread outside the runtime asks `/healthz` every 5 ms while
//! the decisions run, on the workers' side through [`crate::capacity::offload::decide`] as the
//! capacity loop does, or inline for comparison.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::capacity::{offload, wall};
use crate::disruption::{self, Request};
use crate::scheduling::builtin;

#[derive(Debug, Clone, Serialize)]
pub struct HealthzResult {
    pub nodes: usize,
    pub decisions: usize,
    pub parallel: usize,
    /// Whether the decisions ran through the offload (as the loop does) or inline.
    pub offloaded: bool,
    pub decide_ms: f64,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn get(addr: std::net::SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: capstan\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.starts_with("HTTP/1.1 200").then(|| started.elapsed())
}

/// `parallel` decision tasks at once: 2 keeps both workers busy, the worst case.
pub fn run(nodes: usize, decisions: usize, parallel: usize, offloaded: bool) -> Result<HealthzResult, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (snapshot, instances, rules) = super::consolidation::cluster(nodes, 30, 1);
    let shared = Arc::new((snapshot, instances, rules, builtin::catalog()));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }));
    rt.spawn(async move { axum::serve(listener, app).await });
    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Some(l) = get(addr) {
                    latencies.push(l);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            latencies
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let now = Duration::from_secs(1_767_592_800);
    let started = Instant::now();
    // On workers, as the capacity loop's pass is.
    let tasks: Vec<_> = (0..parallel.max(1))
        .map(|_| {
            let data = shared.clone();
            rt.spawn(async move {
                let (snapshot, instances, rules, catalog) = &*data;
                for _ in 0..decisions {
                    let decide = || {
                        let view = crate::provisioning::Request { snapshot, instances, rules, catalog };
                        disruption::plan(Request { view, now, wall: wall(now) })
                    };
                    if offloaded {
                        offload::decide(decide);
                    } else {
                        decide();
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        rt.block_on(t).map_err(|e| e.to_string())?;
    }
    let decide_ms = started.elapsed().as_secs_f64() * 1000.0 / decisions as f64;
    done.store(true, Ordering::Relaxed);
    let mut l = client.join().map_err(|_| "the client thread failed".to_string())?;
    l.sort();
    let at = |q: f64| l.get(((l.len() as f64 - 1.0) * q).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    Ok(HealthzResult {
        nodes,
        decisions,
        parallel,
        offloaded,
        decide_ms: (decide_ms * 10.0).round() / 10.0,
        requests: l.len(),
        p50_ms: (at(0.5) * 100.0).round() / 100.0,
        p99_ms: (at(0.99) * 100.0).round() / 100.0,
        max_ms: (at(1.0) * 100.0).round() / 100.0,
    })
}
