//! A Lambda Runtime API player for tests: the real function binaries poll it as Lambda's
//! execution environments poll the real one (`GET .../invocation/next`, then `.../response` or
//! `.../error`), so several processes of one function are several environments handling
//! invocations at once. Each function is served under its own path prefix:
//! `AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:<port>/<function>`.
//!
//! The same port serves Lambda's Invoke API (`POST /2015-03-31/functions/<name>/invocations`),
//! so an SDK client pointed at it (`AWS_ENDPOINT_URL_LAMBDA`) invokes the functions.
//!
//! [`RuntimeApi::invoke_async`] plays Lambda's asynchronous invocation: on an error the same
//! request id is invoked again (Lambda's retries of an async invocation keep it), and what fails
//! every attempt lands in [`RuntimeApi::failure_queue`] as Lambda's failure destination would
//! keep it.

use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{read_message, response, write_message};

#[derive(Debug, Default)]
struct Inner {
    queues: HashMap<String, VecDeque<(String, String)>>,
    results: HashMap<String, Result<Value, Value>>,
    failure_queue: Vec<(String, Value, Value)>,
    invocations: u64,
}

#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn invoke(
        &self,
        function: &str,
        payload: &str,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Value, Value> {
        {
            let mut inner = self.lock();
            inner.invocations += 1;
            inner
                .queues
                .entry(function.to_string())
                .or_default()
                .push_back((request_id.to_string(), payload.to_string()));
        }
        self.changed.notify_all();
        let started = Instant::now();
        let mut inner = self.lock();
        loop {
            if let Some(r) = inner.results.remove(request_id) {
                return r;
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(json!({"errorType": "Timeout", "errorMessage": "no answer"}));
            }
            inner = self
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The player, listening on a loopback port until the test ends.
#[derive(Debug, Clone)]
pub struct RuntimeApi {
    pub port: u16,
    shared: Arc<Shared>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh request id (unique in the test process).
pub fn request_id() -> String {
    format!(
        "req-{:08}-{}",
        NEXT_ID.fetch_add(1, Ordering::SeqCst),
        std::process::id()
    )
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let accept = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&accept);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        RuntimeApi { port, shared }
    }

    /// The `AWS_LAMBDA_RUNTIME_API` value for a function's environments.
    pub fn endpoint(&self, function: &str) -> String {
        format!("http://127.0.0.1:{}/{function}", self.port)
    }

    /// One attempt: queues the event under `request_id` and waits for the environment's answer
    /// (`Err` with Lambda's error body, or a `Timeout` error after `timeout`).
    pub fn invoke(
        &self,
        function: &str,
        event: &Value,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Value, Value> {
        self.shared
            .invoke(function, &event.to_string(), request_id, timeout)
    }

    /// An asynchronous invocation as Lambda runs it: the first attempt and up to `retries`
    /// more under the same request id; the answer of the last attempt. An event that failed
    /// every attempt is kept in the failure queue.
    pub fn invoke_async(
        &self,
        function: &str,
        event: &Value,
        retries: u32,
    ) -> Result<Value, Value> {
        let id = request_id();
        let mut last = Err(Value::Null);
        for _ in 0..=retries {
            last = self.invoke(function, event, &id, Duration::from_secs(60));
            if last.is_ok() {
                return last;
            }
        }
        if let Err(e) = &last {
            self.shared
                .lock()
                .failure_queue
                .push((function.to_string(), event.clone(), e.clone()));
        }
        last
    }

    /// Events that failed every attempt: (function, event, last error).
    pub fn failure_queue(&self) -> Vec<(String, Value, Value)> {
        self.shared.lock().failure_queue.clone()
    }

    /// Takes the failure queue (an operator's redrive).
    pub fn take_failure_queue(&self) -> Vec<(String, Value, Value)> {
        std::mem::take(&mut self.shared.lock().failure_queue)
    }

    /// Attempts made so far.
    pub fn invocations(&self) -> u64 {
        self.shared.lock().invocations
    }
}

/// Whether the other end of a connection is still open (a closed one reads as end of file).
fn peer_alive(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let open = !matches!(stream.peek(&mut byte), Ok(0));
    let _ = stream.set_nonblocking(false);
    open
}

fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    while let Some(req) = read_message(&mut reader, false) {
        let (method, path) = req.method_path();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // Lambda's Invoke API (`RequestResponse`), as the SDK calls it: the answer, with
        // `X-Amz-Function-Error` when the function failed.
        if let ("POST", ["2015-03-31", "functions", name, "invocations"]) =
            (method, parts.as_slice())
        {
            let payload = String::from_utf8_lossy(&req.body).to_string();
            let answer = shared.invoke(name, &payload, &request_id(), Duration::from_secs(60));
            let (body, failed) = match answer {
                Ok(v) => (v, false),
                Err(v) => (v, true),
            };
            let mut r = response(200, "application/json", body.to_string().as_bytes());
            r.headers
                .push(("X-Amz-Executed-Version".to_string(), "$LATEST".to_string()));
            if failed {
                r.headers
                    .push(("X-Amz-Function-Error".to_string(), "Unhandled".to_string()));
            }
            if write_message(&mut writer, &r).is_err() {
                return;
            }
            continue;
        }
        // <function>/2018-06-01/runtime/...
        let function = parts.first().copied().unwrap_or_default().to_string();
        let rest: Vec<&str> = parts.iter().skip(3).copied().collect();
        let answer = match (method, rest.as_slice()) {
            ("GET", ["invocation", "next"]) => {
                let mut inner = shared.lock();
                let (id, payload) = loop {
                    let ready = inner.queues.get(&function).is_some_and(|q| !q.is_empty());
                    // An environment a test stopped while it polled has closed its end: it
                    // takes nothing (a write to it could still succeed and lose the job).
                    if ready && !peer_alive(&writer) {
                        return;
                    }
                    if let Some(next) = inner
                        .queues
                        .get_mut(&function)
                        .and_then(VecDeque::pop_front)
                    {
                        break next;
                    }
                    inner = shared
                        .changed
                        .wait(inner)
                        .unwrap_or_else(|p| p.into_inner());
                };
                drop(inner);
                let requeue = (id.clone(), payload.clone());
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() + 30_000);
                let mut r = response(200, "application/json", payload.as_bytes());
                r.headers.extend([
                    ("Lambda-Runtime-Aws-Request-Id".to_string(), id),
                    (
                        "Lambda-Runtime-Deadline-Ms".to_string(),
                        deadline.to_string(),
                    ),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn".to_string(),
                        format!("arn:aws:lambda:us-east-1:111122223333:function:{function}"),
                    ),
                    (
                        "Lambda-Runtime-Trace-Id".to_string(),
                        "Root=1-00000000-000000000000000000000000;Sampled=0".to_string(),
                    ),
                ]);
                if write_message(&mut writer, &r).is_err() {
                    // The environment is gone (a test stopped it while it polled): the
                    // invocation goes to the next one, as Lambda's would.
                    shared
                        .lock()
                        .queues
                        .entry(function)
                        .or_default()
                        .push_front(requeue);
                    shared.changed.notify_all();
                    return;
                }
                continue;
            }
            ("POST", ["invocation", id, outcome]) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let result = if *outcome == "response" {
                    Ok(body)
                } else {
                    Err(body)
                };
                shared.lock().results.insert((*id).to_string(), result);
                shared.changed.notify_all();
                response(202, "application/json", b"{\"status\":\"OK\"}")
            }
            ("POST", ["init", "error"]) => response(202, "application/json", b"{}"),
            _ => response(404, "application/json", b"{}"),
        };
        if write_message(&mut writer, &answer).is_err() {
            return;
        }
    }
}
