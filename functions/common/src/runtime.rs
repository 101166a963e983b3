//! What every function's `main` does: logs, configuration, cold start, then the Lambda
//! runtime loop with an EMF metrics line per invocation.

use std::future::Future;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use tagwatch_core::watch::outputs::{
    emf_cause_lines, emf_line, emf_no_access_lines, EMF_FINDING_IDS,
};
use tagwatch_core::Intent;

use crate::aws::{cold_start, AwsPorts};
use crate::config::Config;
use crate::logging;
use crate::pipeline::{Failed, Failure, Invocation, Outcome};

/// An invocation's error as Lambda reports it (`errorType` is the failure kind).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InvocationError {
    kind: &'static str,
    message: String,
}

impl InvocationError {
    /// An error of `kind` (Lambda's `errorType`, which Step Functions' `Retry` and `Catch`
    /// match) with its message.
    pub fn new(kind: &'static str, message: String) -> Self {
        InvocationError { kind, message }
    }
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(e: InvocationError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.kind.to_string(),
            error_message: e.message,
        }
    }
}

/// The response of a successful invocation: a summary, never a finding's content.
fn response(o: &Outcome) -> Value {
    json!({
        "event_id": o.event_id,
        "logged": o.logged.len(),
        "alerted": o.alerted.len(),
        "duplicate": o.duplicate,
        "quarantined": o.quarantined,
    })
}

/// The EMF lines of an invocation: its counts, the event id, and the finding ids it logged (at
/// most [`EMF_FINDING_IDS`]; `findings_total` counts them all); then the unevaluated findings
/// by cause.
fn print_metrics(function: &str, outcome: &Outcome) {
    let listed: Vec<&String> = outcome.logged.iter().take(EMF_FINDING_IDS).collect();
    let now = crate::clock::now_ms();
    println!(
        "{}",
        emf_line(
            function,
            &outcome.counts,
            now,
            &[
                ("event_id", json!(outcome.event_id)),
                ("findings", json!(listed)),
                ("findings_total", json!(outcome.logged.len())),
            ],
        )
    );
    for line in emf_cause_lines(&outcome.counts, now) {
        println!("{line}");
    }
    for line in emf_no_access_lines(&outcome.no_access, now) {
        println!("{line}");
    }
}

/// The configuration read at cold start; a missing or invalid setting is logged (one JSON line,
/// default log settings) and ends the process with exit status 1, which Lambda reports as an
/// init failure.
pub fn configured<C>(read: Result<C, crate::config::ConfigError>) -> C {
    match read {
        Ok(c) => c,
        Err(e) => {
            logging::init(
                logging::PowertoolsJson::new("tagwatch", None, None),
                tracing::Level::INFO,
                tracing::Level::WARN,
            );
            tracing::error!(error = %e, "cold start failed: configuration");
            std::process::exit(1);
        }
    }
}

/// JSON logs with the configuration's service name, function, memory size and levels.
pub fn start_logs(config: &Config) {
    logging::init(
        logging::PowertoolsJson::new(
            &config.service,
            config.function_name.as_deref(),
            config.memory_size,
        ),
        config.log_level,
        config.sdk_log_level,
    );
}

/// Marks the start of the invocation `ctx` for the JSON logs (its request id, function ARN and
/// trace id on every later line).
pub fn begin(ctx: &lambda_runtime::Context) {
    logging::begin_invocation(
        &ctx.request_id,
        &ctx.invoked_function_arn,
        ctx.xray_trace_id.as_deref(),
    );
}

/// Runs a function: `handle` gets the ports, the intent, the configuration, the invocation
/// (its request id) and the raw event.
/// A failed cold start (configuration, intent, log stream) is logged as one JSON line and ends
/// the process with exit status 1, which Lambda reports as an init failure.
pub async fn run<F, Fut>(function: &'static str, handle: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(&'static AwsPorts, &'static Intent, &'static Config, Invocation, Value) -> Fut,
    Fut: Future<Output = Result<Outcome, Failed>>,
{
    let config = configured(Config::from_env());
    start_logs(&config);
    let (ports, intent) = match cold_start(function, &config).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cold start failed");
            std::process::exit(1);
        }
    };
    tracing::info!(
        function,
        intent = config.intent.display().as_str(),
        principals = intent.principals.len(),
        "cold start complete"
    );
    // Built once and kept for the life of the execution environment.
    let ports: &'static AwsPorts = Box::leak(Box::new(ports));
    let intent: &'static Intent = Box::leak(Box::new(intent));
    let config: &'static Config = Box::leak(Box::new(config));
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let ctx = &event.context;
        begin(ctx);
        let invocation = Invocation {
            function,
            request_id: ctx.request_id.clone(),
            lease: config.delivery_lease,
        };
        let result = handle(ports, intent, config, invocation, event.payload).await;
        match result {
            Ok(outcome) => {
                print_metrics(function, &outcome);
                tracing::info!(
                    event_id = outcome.event_id.as_str(),
                    logged = outcome.logged.len(),
                    alerted = outcome.alerted.len(),
                    duplicate = outcome.duplicate,
                    quarantined = outcome.quarantined.is_some(),
                    "invocation complete"
                );
                Ok(response(&outcome))
            }
            Err(Failed {
                failure,
                mut outcome,
            }) => {
                if let Failure::Unkept { .. } = failure {
                    // Counted here: the failure destination keeps the event.
                    outcome.counts.malformed_events += 1;
                }
                // What this attempt delivered before failing is counted now: a retry will not
                // count it again.
                print_metrics(function, &outcome);
                tracing::error!(kind = failure.kind(), error = %failure, "invocation failed; Lambda will retry");
                Err(InvocationError {
                    kind: failure.kind(),
                    message: failure.to_string(),
                })
            }
        }
    }))
    .await
}
