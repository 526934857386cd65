//! A small HTTP proxy between the SDK and moto that injects what moto does not model:
//! insufficient capacity on chosen instance types or (type, subnet) pairs (CreateFleet answers
//! with per-override errors, as EC2 does), a whole CreateFleet refused with an error code,
//! throttling, and answers lost after the request was carried out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
pub struct Faults {
    /// Instance types CreateFleet has no capacity for (in any subnet).
    pub no_capacity: Vec<String>,
    /// (instance type, subnet id) pairs CreateFleet has no capacity for: one type in one zone.
    pub no_capacity_in: Vec<(String, String)>,
    /// Error codes the next CreateFleet calls are answered with as a whole (HTTP 400), in order.
    pub fleet_error: VecDeque<String>,
    /// How many more CreateFleet calls have every override refused in `Errors[]`.
    pub refuse_fleets: u32,
    /// The overrides (instance type, subnet id) of every CreateFleet request seen, in order.
    pub fleets: Vec<Vec<(String, String)>>,
    /// Action → how many more requests to answer with RequestLimitExceeded.
    pub throttle: HashMap<String, u32>,
    /// Action → how many more answers to drop after moto carried the request out.
    pub drop_answer: HashMap<String, u32>,
    /// Action → requests seen.
    pub seen: HashMap<String, u32>,
}

pub struct Proxy {
    pub url: String,
    pub faults: Arc<Mutex<Faults>>,
}

/// Starts the proxy in front of `upstream` (host:port) on the current runtime.
pub async fn start(upstream: &str) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let faults: Arc<Mutex<Faults>> = Arc::default();
    let (f, up) = (faults.clone(), upstream.to_string());
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(conn, up.clone(), f.clone()));
        }
    });
    Proxy { url, faults }
}

/// Reads one HTTP/1.1 message with a Content-Length body; `None` at end of stream.
async fn read_message(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..].to_vec()))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn with_length(head: &str, len: usize) -> String {
    let mut out: Vec<String> = head
        .trim_end()
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("content-length:") && !l.starts_with("connection:")
        })
        .map(str::to_string)
        .collect();
    out.push(format!("Content-Length: {len}"));
    out.push("Connection: close".into());
    out.join("\r\n") + "\r\n\r\n"
}

/// Sends a request to moto and returns its whole answer.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut up = TcpStream::connect(upstream).await.unwrap();
    up.write_all(with_length(head, body.len()).as_bytes()).await.unwrap();
    up.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await.unwrap();
    answer
}

fn respond(status: &str, xml: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}", xml.len()).into_bytes()
}

/// Which overrides have no capacity: by type, or by (type, subnet).
#[derive(Debug, Clone, Default)]
struct Failing {
    all: bool,
    types: Vec<String>,
    pairs: Vec<(String, String)>,
}

impl Failing {
    fn is_empty(&self) -> bool {
        !self.all && self.types.is_empty() && self.pairs.is_empty()
    }

    fn contains(&self, instance_type: &str, subnet: &str) -> bool {
        self.all
            || self.types.iter().any(|t| t == instance_type)
            || self.pairs.iter().any(|(t, s)| t == instance_type && s == subnet)
    }
}

/// The (instance type, subnet id) overrides of a CreateFleet request.
fn overrides(params: &[(String, String)]) -> Vec<(String, String)> {
    let prefix = "LaunchTemplateConfigs.1.Overrides.";
    let mut by_index: std::collections::BTreeMap<u32, (String, String)> = Default::default();
    for (k, v) in params {
        if let Some((n, field)) = k.strip_prefix(prefix).and_then(|r| r.split_once('.')) {
            let entry = by_index.entry(n.parse().unwrap()).or_default();
            match field {
                "InstanceType" => entry.0 = v.clone(),
                "SubnetId" => entry.1 = v.clone(),
                _ => {}
            }
        }
    }
    by_index.into_values().collect()
}

/// Takes the failing overrides out of a CreateFleet request; returns the new body and the
/// removed (type, subnet) pairs.
fn strip_overrides(params: &[(String, String)], failing: &Failing) -> (Vec<u8>, Vec<(String, String)>) {
    let prefix = "LaunchTemplateConfigs.1.Overrides.";
    let mut overrides: std::collections::BTreeMap<u32, Vec<(String, String)>> = Default::default();
    let mut rest = Vec::new();
    for (k, v) in params {
        match k.strip_prefix(prefix).and_then(|r| r.split_once('.')) {
            Some((n, field)) => overrides.entry(n.parse().unwrap()).or_default().push((field.to_string(), v.clone())),
            None => rest.push((k.clone(), v.clone())),
        }
    }
    let mut removed = Vec::new();
    let mut kept = 0;
    for fields in overrides.values() {
        let get = |f: &str| fields.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone()).unwrap_or_default();
        if failing.contains(&get("InstanceType"), &get("SubnetId")) {
            removed.push((get("InstanceType"), get("SubnetId")));
            continue;
        }
        kept += 1;
        for (f, v) in fields {
            rest.push((format!("{prefix}{kept}.{f}"), v.clone()));
        }
    }
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(rest).finish();
    (body.into_bytes(), removed)
}

fn error_set(removed: &[(String, String)]) -> String {
    let items: String = removed
        .iter()
        .map(|(t, s)| format!("<item><errorCode>InsufficientInstanceCapacity</errorCode><errorMessage>We currently do not have sufficient {t} capacity.</errorMessage><launchTemplateAndOverrides><overrides><instanceType>{t}</instanceType><subnetId>{s}</subnetId></overrides></launchTemplateAndOverrides><lifecycle>on-demand</lifecycle></item>"))
        .collect();
    format!("<errorSet>{items}</errorSet>")
}

async fn serve(mut conn: TcpStream, upstream: String, faults: Arc<Mutex<Faults>>) {
    while let Some((head, body)) = read_message(&mut conn).await {
        let params = form(&body);
        let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
        let (throttled, dropped, failing, refused) = {
            let mut f = faults.lock().unwrap();
            *f.seen.entry(action.clone()).or_default() += 1;
            let take = |m: &mut HashMap<String, u32>| match m.get_mut(&action) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            };
            let t = take(&mut f.throttle);
            let d = take(&mut f.drop_answer);
            let (refused, all) = if action == "CreateFleet" {
                f.fleets.push(overrides(&params));
                let all = f.refuse_fleets > 0;
                f.refuse_fleets = f.refuse_fleets.saturating_sub(1);
                (f.fleet_error.pop_front(), all)
            } else {
                (None, false)
            };
            (t, d, Failing { all, types: f.no_capacity.clone(), pairs: f.no_capacity_in.clone() }, refused)
        };
        if let Some(code) = refused {
            let xml = format!(
                "<Response><Errors><Error><Code>{code}</Code><Message>Injected by the fault proxy.</Message></Error></Errors><RequestID>proxy</RequestID></Response>"
            );
            if conn.write_all(&respond("400 Bad Request", &xml)).await.is_err() {
                return;
            }
            continue;
        }
        if throttled {
            let xml = "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>proxy</RequestID></Response>";
            if conn.write_all(&respond("503 Service Unavailable", xml)).await.is_err() {
                return;
            }
            continue;
        }
        let mut answer = if action == "CreateFleet" && !failing.is_empty() {
            let (stripped, removed) = strip_overrides(&params, &failing);
            let kept = form(&stripped).iter().any(|(k, _)| k.contains(".Overrides."));
            if kept {
                let a = String::from_utf8_lossy(&forward(&upstream, &head, &stripped).await).to_string();
                a.replacen("</CreateFleetResponse>", &format!("{}</CreateFleetResponse>", error_set(&removed)), 1)
                    .into_bytes()
            } else {
                let xml = format!(
                    "<CreateFleetResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>proxy</requestId><fleetId>fleet-proxy</fleetId>{}<fleetInstanceSet/></CreateFleetResponse>",
                    error_set(&removed)
                );
                respond("200 OK", &xml)
            }
        } else {
            forward(&upstream, &head, &body).await
        };
        if dropped {
            return;
        }
        // moto closes after each answer; fix its Content-Length if the body was edited.
        if let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let (h, b) = answer.split_at(i + 4);
            let h = String::from_utf8_lossy(h).to_string();
            answer = [
                with_length(&h, b.len()).replace("Connection: close", "Connection: keep-alive").into_bytes(),
                b.to_vec(),
            ]
            .concat();
        }
        if conn.write_all(&answer).await.is_err() {
            return;
        }
    }
}
