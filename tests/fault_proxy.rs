//! A proxy in front of moto's server that fails a share of DynamoDB, CloudWatch Logs,
//! EventBridge and Security Hub (`BatchImportFindings`) calls the way AWS does under load:
//! throttling (HTTP 400 `ThrottlingException`) and 500s before the call is executed, and 500s
//! after moto executed it (the answer lost on the way back). Other services pass through.
//! Faults are drawn from a seeded generator, so a run can be repeated.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::http::{read_message, response, write_message, Message};

/// Which services get faults, how often, and whether after-execution faults apply.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Faults per thousand calls of a faulted service.
    pub per_mille: u64,
    pub seed: u64,
    /// Services (`dynamodb`, `logs`, `events`, `securityhub`) whose calls may fail after moto
    /// executed them.
    pub after: &'static [&'static str],
    /// Accounts whose roles STS refuses to let anyone assume (`AccessDenied`, as STS answers
    /// for a role that does not exist or does not trust the caller; moto itself hands out
    /// credentials for any role ARN).
    pub refuse_roles_in: &'static [&'static str],
    /// Whether S3 reads (every `GET`: `ListObjectsV2`, `GetObject`) get faults too: `SlowDown`
    /// (503) and 500s before the call, and object bodies cut off half way (the answer's
    /// `Content-Length` promises the whole object, the connection closes after half of it).
    pub s3: bool,
    /// S3 `GetObject`s of keys containing one of these are refused, every time: 403
    /// `AccessDenied`, as S3 answers when a bucket policy or the object's KMS key denies the
    /// caller (an organisation trail's objects encrypted with a key the reader may not use).
    pub deny_s3_keys: &'static [&'static str],
}

impl FaultPlan {
    /// No faults: every call passes (a proxy only to count calls, or to refuse roles).
    pub const fn clean() -> FaultPlan {
        FaultPlan {
            per_mille: 0,
            seed: 1,
            after: &[],
            refuse_roles_in: &[],
            s3: false,
            deny_s3_keys: &[],
        }
    }
}

/// What the proxy did: (service, what) to a count; `what` is `passed`, `throttled`,
/// `failed_before` or `failed_after`.
pub type FaultStats = BTreeMap<(String, String), u64>;

#[derive(Debug)]
struct State {
    rng: u64,
    stats: FaultStats,
}

/// The proxy, listening on a loopback port until the test ends.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
}

fn service(req: &Message) -> Option<&'static str> {
    // Security Hub speaks REST JSON: `BatchImportFindings` is `POST /findings/import`.
    if req.method_path() == ("POST", "/findings/import") {
        return Some("securityhub");
    }
    let target = req.header("x-amz-target")?;
    if target.starts_with("DynamoDB_") {
        Some("dynamodb")
    } else if target.starts_with("Logs_") {
        Some("logs")
    } else if target.starts_with("AWSEvents.") {
        Some("events")
    } else {
        None
    }
}

fn error(status: u16, service: &str, code: &str) -> Message {
    let (content_type, kind) = match service {
        "dynamodb" => (
            "application/x-amz-json-1.0",
            format!("com.amazonaws.dynamodb.v20120810#{code}"),
        ),
        _ => ("application/x-amz-json-1.1", code.to_string()),
    };
    let body = format!(r#"{{"__type":"{kind}","message":"injected by the test proxy"}}"#);
    response(status, content_type, body.as_bytes())
}

/// S3's error answer (REST XML).
fn s3_error(status: u16, code: &str) -> Message {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>fault-proxy</RequestId></Error>"
    );
    response(status, "application/xml", xml.as_bytes())
}

/// Whether `req` is an S3 `GetObject` (a `GET` of a key, not a listing).
fn is_get_object(req: &Message) -> bool {
    let (method, path) = req.method_path();
    method == "GET" && !path.contains("list-type=") && path.trim_start_matches('/').contains('/')
}

/// An S3 fault for `req`, when one is drawn: the answer to give, or `None` for a body cut off
/// half way (written by the caller).
fn s3_fault(req: &Message, state: &Mutex<State>) -> Option<Option<Message>> {
    let get_object = is_get_object(req);
    Some(match draw(state) % 3 {
        0 => {
            count(state, "s3", "throttled");
            Some(s3_error(503, "SlowDown"))
        }
        1 => {
            count(state, "s3", "failed_before");
            Some(s3_error(500, "InternalError"))
        }
        _ if get_object => {
            count(state, "s3", "cut");
            None
        }
        _ => {
            count(state, "s3", "failed_before");
            Some(s3_error(500, "InternalError"))
        }
    })
}

/// STS's answer to an `AssumeRole` of a role in a refused account: 403 `AccessDenied` in the
/// query protocol's XML error form.
fn refused_assume_role(req: &Message, accounts: &[&str]) -> Option<Message> {
    let body = String::from_utf8_lossy(&req.body);
    if !body.contains("Action=AssumeRole") {
        return None;
    }
    let account = accounts
        .iter()
        .find(|a| body.contains(&format!("iam%3A%3A{a}%3Arole")))?;
    let xml = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/test is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{account}:role/TagwatchReader</Message></Error><RequestId>refused-by-the-test-proxy</RequestId></ErrorResponse>"
    );
    Some(response(403, "text/xml", xml.as_bytes()))
}

impl FaultProxy {
    pub fn start(upstream_port: u16, plan: FaultPlan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            rng: plan.seed | 1,
            stats: FaultStats::new(),
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, upstream_port, plan, &state));
            }
        });
        FaultProxy {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    pub fn stats(&self) -> FaultStats {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stats
            .clone()
    }

    /// Faults injected so far.
    pub fn faults(&self) -> u64 {
        self.stats()
            .iter()
            .filter(|((_, what), _)| what != "passed")
            .map(|(_, n)| n)
            .sum()
    }
}

/// xorshift64*: (next state, a number).
fn draw(state: &Mutex<State>) -> u64 {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut x = s.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s.rng = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn count(state: &Mutex<State>, service: &str, what: &str) {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    *s.stats
        .entry((service.to_string(), what.to_string()))
        .or_default() += 1;
}

fn forward(req: &Message, upstream_port: u16) -> Option<Message> {
    let stream = TcpStream::connect(("127.0.0.1", upstream_port)).ok()?;
    let mut writer = stream.try_clone().ok()?;
    let mut up = req.clone();
    up.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("connection"));
    up.headers
        .push(("Connection".to_string(), "close".to_string()));
    write_message(&mut writer, &up).ok()?;
    let mut answer = read_message(&mut BufReader::new(stream), true)?;
    answer
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("connection"));
    Some(answer)
}

fn serve(stream: TcpStream, upstream_port: u16, plan: FaultPlan, state: &Mutex<State>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    while let Some(req) = read_message(&mut reader, false) {
        if let Some(answer) = refused_assume_role(&req, plan.refuse_roles_in) {
            count(state, "sts", "refused");
            if write_message(&mut writer, &answer).is_err() {
                return;
            }
            continue;
        }
        if is_get_object(&req)
            && plan
                .deny_s3_keys
                .iter()
                .any(|k| req.method_path().1.contains(k))
        {
            count(state, "s3", "denied");
            if write_message(&mut writer, &s3_error(403, "AccessDenied")).is_err() {
                return;
            }
            continue;
        }
        if plan.s3 && req.method_path().0 == "GET" {
            let fault = (draw(state) % 1000 < plan.per_mille)
                .then(|| s3_fault(&req, state))
                .flatten();
            let answer = match fault {
                Some(Some(error)) => error,
                Some(None) => {
                    // The whole object's length promised, half of it sent, the connection closed.
                    if let Some(full) = forward(&req, upstream_port) {
                        let mut head = full.clone();
                        head.body.clear();
                        let half = full.body.len() / 2;
                        let mut bytes = Vec::new();
                        bytes.extend_from_slice(head.start.as_bytes());
                        bytes.extend_from_slice(b"\r\n");
                        for (k, v) in head.headers.iter().filter(|(k, _)| {
                            !["content-length", "transfer-encoding"]
                                .iter()
                                .any(|f| k.eq_ignore_ascii_case(f))
                        }) {
                            bytes.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                        }
                        bytes.extend_from_slice(
                            format!("Content-Length: {}\r\n\r\n", full.body.len()).as_bytes(),
                        );
                        bytes.extend_from_slice(full.body.get(..half).unwrap_or_default());
                        let _ = std::io::Write::write_all(&mut writer, &bytes);
                    }
                    let _ = writer.shutdown(std::net::Shutdown::Both);
                    return;
                }
                None => {
                    count(state, "s3", "passed");
                    match forward(&req, upstream_port) {
                        Some(a) => a,
                        None => s3_error(500, "InternalError"),
                    }
                }
            };
            if write_message(&mut writer, &answer).is_err() {
                return;
            }
            continue;
        }
        let svc = service(&req);
        let fault = svc.filter(|_| draw(state) % 1000 < plan.per_mille);
        let answer = match (svc, fault) {
            (Some(svc), Some(_)) => match draw(state) % 3 {
                0 => {
                    count(state, svc, "throttled");
                    error(400, svc, "ThrottlingException")
                }
                1 => {
                    count(state, svc, "failed_before");
                    error(500, svc, "InternalServerError")
                }
                _ if plan.after.contains(&svc) => {
                    count(state, svc, "failed_after");
                    let _ = forward(&req, upstream_port);
                    error(500, svc, "InternalServerError")
                }
                _ => {
                    count(state, svc, "failed_before");
                    error(500, svc, "InternalServerError")
                }
            },
            (svc, _) => {
                if let Some(svc) = svc {
                    count(state, svc, "passed");
                }
                match forward(&req, upstream_port) {
                    Some(a) => a,
                    None => error(500, svc.unwrap_or("other"), "InternalServerError"),
                }
            }
        };
        if write_message(&mut writer, &answer).is_err() {
            return;
        }
    }
}
