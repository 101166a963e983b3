//! Cold start (configuration, clients, intent) once, then one request per invocation: a plan
//! (the items of a backfill) or a batch of day folders.

mod handler;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tagwatch_lambda::aws::cold_start_backfill;
use tagwatch_lambda::config::BackfillConfig;
use tagwatch_lambda::runtime::{begin, configured, start_logs, InvocationError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = configured(BackfillConfig::from_env());
    start_logs(&config.base);
    let (ports, intent) = match cold_start_backfill(handler::FUNCTION, &config).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cold start failed");
            std::process::exit(1);
        }
    };
    tracing::info!(
        function = handler::FUNCTION,
        intent = config.base.intent.display().as_str(),
        results_bucket = config.results_bucket.as_str(),
        "cold start complete"
    );
    let settings = handler::Settings {
        results_bucket: config.results_bucket.clone(),
        results_prefix: config.results_prefix.clone(),
        fetches: config.fetches,
        max_record_bytes: config.max_record_bytes,
        log_batch_events: tagwatch_core::watch::outputs::LOG_BATCH_EVENTS,
    };
    let ports = handler::Ports {
        tags: &ports.tags,
        log: &ports.log,
        archive: &ports.archive,
        scope: &ports.tag_scope,
        inventory: &ports.inventory,
    };
    let (ports, intent, settings) = (&ports, &intent, &settings);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let ctx = &event.context;
        begin(ctx);
        let deadline_ms = i64::try_from(ctx.deadline).ok();
        match handler::handle(ports, intent, settings, &event.payload, deadline_ms).await {
            Ok(response) => Ok(response),
            Err(e) => {
                tracing::error!(kind = e.kind(), error = %e, "invocation failed");
                Err(InvocationError::new(e.kind(), e.to_string()))
            }
        }
    }))
    .await
}
