//! JSON logs with the AWS Lambda Powertools key names (`level`, `location`, `message`,
//! `timestamp`, `service`, `cold_start`, `function_name`, `function_memory_size`,
//! `function_arn`, `function_request_id`, `xray_trace_id`), so Powertools-aware queries and
//! dashboards work unchanged. Event fields are added as keys of their own.
//!
//! What is logged is chosen at the call sites: ids, kinds, counts and reasons, never an
//! event's payload (command parameters and session tokens stay out of the logs).

use std::fmt;
use std::sync::Mutex;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::clock::now_ms;

/// The invocation a log line belongs to.
#[derive(Debug, Default, Clone)]
struct Invocation {
    request_id: Option<String>,
    function_arn: Option<String>,
    xray_trace_id: Option<String>,
    cold_start: bool,
    invocations: u64,
}

static CURRENT: Mutex<Invocation> = Mutex::new(Invocation {
    request_id: None,
    function_arn: None,
    xray_trace_id: None,
    cold_start: true,
    invocations: 0,
});

/// Marks the start of an invocation: later lines carry its ids; `cold_start` is true only
/// during the first.
pub fn begin_invocation(request_id: &str, function_arn: &str, xray_trace_id: Option<&str>) {
    let mut cur = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    cur.invocations += 1;
    cur.cold_start = cur.invocations == 1;
    cur.request_id = Some(request_id.to_string());
    cur.function_arn = Some(function_arn.to_string()).filter(|s| !s.is_empty());
    cur.xray_trace_id = xray_trace_id.map(str::to_string);
}

/// The Powertools-style JSON line format.
#[derive(Debug, Clone)]
pub struct PowertoolsJson {
    service: String,
    function_name: Option<String>,
    memory_size: Option<u64>,
}

impl PowertoolsJson {
    /// The format for `service`, with the function's name and memory size (from [`Config`]).
    pub fn new(service: &str, function_name: Option<&str>, memory_size: Option<u64>) -> Self {
        PowertoolsJson {
            service: service.to_string(),
            function_name: function_name.map(str::to_string),
            memory_size,
        }
    }

    /// One log line (without the newline) for a message and its fields.
    pub fn line(
        &self,
        level: &tracing::Level,
        location: &str,
        timestamp_ms: i64,
        fields: Map<String, Value>,
    ) -> String {
        let cur = CURRENT.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = Map::new();
        out.insert("level".into(), Value::from(level.as_str()));
        out.insert("location".into(), Value::from(location));
        let mut fields = fields;
        out.insert(
            "message".into(),
            fields.remove("message").unwrap_or(Value::from("")),
        );
        out.insert("timestamp".into(), Value::from(rfc3339_ms(timestamp_ms)));
        out.insert("service".into(), Value::from(self.service.as_str()));
        out.insert("cold_start".into(), Value::from(cur.cold_start));
        if let Some(name) = &self.function_name {
            out.insert("function_name".into(), Value::from(name.as_str()));
        }
        if let Some(m) = self.memory_size {
            out.insert("function_memory_size".into(), Value::from(m));
        }
        if let Some(arn) = cur.function_arn {
            out.insert("function_arn".into(), Value::from(arn));
        }
        if let Some(id) = cur.request_id {
            out.insert("function_request_id".into(), Value::from(id));
        }
        if let Some(x) = cur.xray_trace_id {
            out.insert("xray_trace_id".into(), Value::from(x));
        }
        for (k, v) in fields {
            out.entry(k).or_insert(v);
        }
        Value::Object(out).to_string()
    }
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_string(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for PowertoolsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let meta = event.metadata();
        let location = format!(
            "{}:{}",
            meta.module_path().unwrap_or(meta.target()),
            meta.line().unwrap_or(0)
        );
        writeln!(
            writer,
            "{}",
            self.line(meta.level(), &location, now_ms(), fields.0)
        )
    }
}

/// The log events let through: tagwatch's own (every target of a `tagwatch…` crate or binary)
/// at `level`, everything else (the AWS SDK, hyper, aws-sigv4, rustls, the Lambda runtime) at
/// `sdk_level`, so that `TAGWATCH_LOG_LEVEL=DEBUG` never turns on the libraries' request and
/// signing logs.
pub fn targets(level: tracing::Level, sdk_level: tracing::Level) -> Targets {
    Targets::new()
        .with_default(sdk_level)
        .with_target("tagwatch", level)
}

/// Installs the JSON logger on stdout (once, at cold start), filtered by [`targets`].
pub fn init(format: PowertoolsJson, level: tracing::Level, sdk_level: tracing::Level) {
    let layer = tracing_subscriber::fmt::layer()
        .event_format(format)
        .with_writer(std::io::stdout)
        .with_filter(targets(level, sdk_level));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// `2026-11-22T08:15:04.123Z`: epoch milliseconds as RFC 3339 UTC (the calendar is the `time`
/// crate's); a time outside what `time` represents is shown as the raw milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13 §4: `TAGWATCH_LOG_LEVEL=DEBUG` is tagwatch's own debug output; the SDK's,
    /// hyper's and aws-sigv4's stay at WARN unless their own switch says otherwise.
    #[test]
    fn library_logs_stay_at_warn_unless_their_own_switch_is_set() {
        use tracing::Level;
        let t = targets(Level::DEBUG, Level::WARN);
        for own in [
            "tagwatch_lambda::pipeline",
            "tagwatch_aws::dynamo",
            "tagwatch_cloudtrail_watcher",
        ] {
            assert!(t.would_enable(own, &Level::DEBUG), "{own}");
            assert!(!t.would_enable(own, &Level::TRACE), "{own}");
        }
        for library in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_sigv4::http_request::sign",
            "hyper_util::client::legacy::pool",
            "rustls::client",
            "lambda_runtime",
        ] {
            assert!(!t.would_enable(library, &Level::DEBUG), "{library}");
            assert!(!t.would_enable(library, &Level::INFO), "{library}");
            assert!(t.would_enable(library, &Level::WARN), "{library}");
        }
        let sdk_debug = targets(Level::INFO, Level::DEBUG);
        assert!(sdk_debug.would_enable("aws_sigv4::http_request::sign", &Level::DEBUG));
        assert!(!sdk_debug.would_enable("tagwatch_lambda::pipeline", &Level::DEBUG));
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_335_304_123), "2026-11-22T08:15:04.123Z");
    }

    #[test]
    fn lines_carry_the_powertools_keys_and_the_fields() {
        let f = PowertoolsJson {
            service: "tagwatch".into(),
            function_name: Some("tagwatch-cloudtrail-watcher".into()),
            memory_size: Some(128),
        };
        begin_invocation(
            "req-1",
            "arn:aws:lambda:us-east-1:1:function:f",
            Some("Root=1-x"),
        );
        let mut fields = Map::new();
        fields.insert("message".into(), Value::from("event quarantined"));
        fields.insert("reason".into(), Value::from("malformed"));
        // A field may not shadow a Powertools key.
        fields.insert("service".into(), Value::from("other"));
        let line = f.line(&tracing::Level::WARN, "m:1", 0, fields);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["message"], "event quarantined");
        assert_eq!(v["service"], "tagwatch");
        assert_eq!(v["function_request_id"], "req-1");
        assert_eq!(v["function_arn"], "arn:aws:lambda:us-east-1:1:function:f");
        assert_eq!(v["xray_trace_id"], "Root=1-x");
        assert_eq!(v["function_name"], "tagwatch-cloudtrail-watcher");
        assert_eq!(v["function_memory_size"], 128);
        assert_eq!(v["reason"], "malformed");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000Z");
        assert!(v["cold_start"].is_boolean());
    }
}
