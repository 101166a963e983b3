//! `tagwatch redrive`: invokes again what Lambda's failure destination kept, and deletes each
//! record whose invocation succeeded (see `tagwatch_aws::redrive`).
//!
//! Output: one JSON line per message (`result`: `delivered`, `failed` or `unreadable`), then a
//! summary line. Exit status 0 when every message was delivered (or the queue was empty), 1 when
//! some stay on the queue, 2 on bad usage or an AWS error.

use std::io::Write;

use clap::Args;
use serde_json::json;
use tagwatch_aws::redrive::{Redrive, Redriven};

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The failure destination's SQS queue URL.
    #[arg(long, value_name = "URL")]
    queue: String,
    /// Invoke this function instead of the one each record names.
    #[arg(long, value_name = "NAME")]
    function: Option<String>,
    /// Redrive at most this many messages.
    #[arg(long, default_value_t = 1000)]
    max: usize,
    /// Seconds a message stays hidden while it is handled (it reappears if this run stops).
    #[arg(long, default_value_t = 300)]
    visibility_seconds: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("cannot start the AWS runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error(transparent)]
    Aws(#[from] tagwatch_aws::AdapterError),
}

pub fn run(args: &RedriveArgs, out: &mut impl Write) -> Result<u8, RedriveError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(async {
        let sdk = tagwatch_aws::load_config().await;
        let redrive = Redrive::new(
            tagwatch_aws::aws_sdk_sqs::Client::new(&sdk),
            tagwatch_aws::aws_sdk_lambda::Client::new(&sdk),
        );
        redrive
            .run(
                &args.queue,
                args.function.as_deref(),
                args.max,
                args.visibility_seconds,
            )
            .await
    })?;
    let mut delivered = 0;
    for r in &results {
        if matches!(r, Redriven::Delivered { .. }) {
            delivered += 1;
        }
        // The message was already redriven (or kept): its line must say so even if it
        // cannot be serialised.
        let line = serde_json::to_string(r).unwrap_or_else(|e| {
            json!({"error": format!("cannot write this result as JSON: {e}")}).to_string()
        });
        let _ = writeln!(out, "{line}");
    }
    let kept = results.len() - delivered;
    let _ = writeln!(
        out,
        "{}",
        json!({"summary": {"messages": results.len(), "delivered": delivered, "kept": kept}})
    );
    Ok(if kept == 0 { 0 } else { 1 })
}
