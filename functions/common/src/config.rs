//! Configuration from the environment, read once at cold start.

use std::time::Duration;

use tagwatch_aws::intent::IntentSource;

/// Every setting a function reads. Names are the environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TAGWATCH_INTENT`: `ssm:/NAME`, `s3://BUCKET/KEY`, or a file path (relative paths are
    /// resolved against `LAMBDA_TASK_ROOT`, where a bundled intent lives).
    pub intent: IntentSource,
    /// `TAGWATCH_TABLE`: the DynamoDB table for correlation, idempotency and the outbox.
    pub table: String,
    /// `TAGWATCH_FINDINGS_LOG_GROUP`: the findings log group.
    pub findings_log_group: String,
    /// `TAGWATCH_FINDINGS_BUS`: the findings event bus (name or ARN).
    pub findings_bus: String,
    /// `TAGWATCH_QUARANTINE_QUEUE_URL` (optional): the SQS queue that keeps malformed or
    /// unexpected events. Without it such an event fails the invocation, so that the function's
    /// failure destination keeps it after Lambda's retries.
    pub quarantine_queue_url: Option<String>,
    /// `TAGWATCH_SECURITY_HUB_PRODUCT_ARN` (optional): export alerting findings to AWS Security
    /// Hub under this product (the account's default product,
    /// `arn:PARTITION:securityhub:REGION:ACCOUNT:product/ACCOUNT/default`); unset, nothing is
    /// exported.
    pub security_hub: Option<tagwatch_core::watch::asff::Home>,
    /// `TAGWATCH_STATE_TTL_SECONDS` (default 46 days): how long correlation items live. It must
    /// outlast every way back to them: the failure queue's 14-day retention (a redriven event
    /// finds its sighting, outbox and claims) plus the longest command lifetime (SendCommand's
    /// `TimeoutSeconds` allows 30 days before delivery, and a document may run 48 hours).
    pub state_ttl: Duration,
    /// `TAGWATCH_DELIVERY_LEASE_SECONDS` (default 40, above the functions' 30 s timeout): how
    /// long an invocation holds a finding's delivery lease before another may deliver it.
    pub delivery_lease: Duration,
    /// `TAGWATCH_SWEEP_BATCH` (default 500): at most this many due invocations per sweep run;
    /// the rest wait for the next run.
    pub sweep_batch: usize,
    /// `TAGWATCH_TAG_CACHE_SECONDS` (default 60): how long looked-up tags are reused.
    pub tag_cache: Duration,
    /// `TAGWATCH_PARK_DELAY_SECONDS` (default 900): how long the sweep waits for a parked
    /// invocation's SendCommand record before reporting it `unevaluated`.
    pub park_delay: Duration,
    /// `TAGWATCH_SILENCE_HOURS` (default 6; 0 turns it off): how long an account and region
    /// that sent events may send none before the sweep reports it (`silent_source`).
    pub silence_after: Option<Duration>,
    /// `TAGWATCH_SPIKE_THRESHOLD` (optional; unset or 0 keeps the intent's `spike.threshold`).
    pub spike_threshold: Option<u32>,
    /// `TAGWATCH_SPIKE_WINDOW_SECONDS` (optional; unset or 0 keeps the intent's
    /// `spike.window_seconds`).
    pub spike_window_seconds: Option<u64>,
    /// `TAGWATCH_ACCOUNT_ID` (optional) and `AWS_REGION`: whose instance tags the function can
    /// read; events from other accounts or regions get unknown tags (`unevaluated`).
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// `TAGWATCH_MEMBER_ACCOUNTS` (default none): member accounts whose runs are judged with
    /// their own live tags, read through their reader role: a comma-separated list of account
    /// ids, or `*` for every account whose events reach the deployment.
    pub members: crate::ports::Members,
    /// `TAGWATCH_READER_ROLE` (default `TagwatchReader`): the reader role's name in each
    /// member account.
    pub reader_role: String,
    /// `TAGWATCH_READER_EXTERNAL_ID` (optional): the external id the reader roles require.
    pub reader_external_id: Option<String>,
    /// `TAGWATCH_PARTITION` (default `aws`): the partition of the deployment's account (the
    /// reader roles' ARNs).
    pub partition: String,
    /// `POWERTOOLS_SERVICE_NAME` (default `tagwatch`): the `service` key of every log line.
    pub service: String,
    /// `TAGWATCH_LOG_LEVEL` or `AWS_LAMBDA_LOG_LEVEL` (default `INFO`): tagwatch's own log
    /// events.
    pub log_level: tracing::Level,
    /// `TAGWATCH_SDK_LOG_LEVEL` (default `WARN`): the libraries' log events (the AWS SDK,
    /// hyper, aws-sigv4, the Lambda runtime). Separate on purpose: at DEBUG they log request
    /// signing and HTTP bodies.
    pub sdk_log_level: tracing::Level,
    /// `AWS_LAMBDA_FUNCTION_NAME` and `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (set by Lambda): the
    /// `function_name` and `function_memory_size` keys of every log line.
    pub function_name: Option<String>,
    pub memory_size: Option<u64>,
    /// `AWS_LAMBDA_LOG_STREAM_NAME` (set by Lambda): names this execution environment's
    /// findings log stream.
    pub log_stream: Option<String>,
}

/// The default state TTL: 14 days of failure-queue retention + 30 days of SendCommand delivery
/// timeout + 2 days of execution timeout.
pub const DEFAULT_STATE_TTL_SECONDS: u64 = (14 + 30 + 2) * 86_400;

/// A missing or invalid setting; the cold start fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let spike_threshold = match env.count("TAGWATCH_SPIKE_THRESHOLD")? {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| ConfigError::Invalid {
                name: "TAGWATCH_SPIKE_THRESHOLD",
                value: n.to_string(),
                reason: "too large",
            })?),
        };
        Ok(Config {
            intent: intent_source(&env)?,
            table: env.required("TAGWATCH_TABLE")?,
            findings_log_group: env.required("TAGWATCH_FINDINGS_LOG_GROUP")?,
            findings_bus: env.required("TAGWATCH_FINDINGS_BUS")?,
            quarantine_queue_url: env.get("TAGWATCH_QUARANTINE_QUEUE_URL"),
            security_hub: match env.get("TAGWATCH_SECURITY_HUB_PRODUCT_ARN") {
                None => None,
                Some(arn) => Some(tagwatch_core::watch::asff::Home::parse(arn.trim()).map_err(
                    |_| ConfigError::Invalid {
                        name: "TAGWATCH_SECURITY_HUB_PRODUCT_ARN",
                        value: arn.clone(),
                        reason: "expected arn:PARTITION:securityhub:REGION:ACCOUNT:product/ACCOUNT/default",
                    },
                )?),
            },
            state_ttl: env.seconds("TAGWATCH_STATE_TTL_SECONDS", DEFAULT_STATE_TTL_SECONDS)?,
            delivery_lease: env.seconds("TAGWATCH_DELIVERY_LEASE_SECONDS", 40)?,
            sweep_batch: env.positive(
                "TAGWATCH_SWEEP_BATCH",
                500,
                "expected a positive whole number of invocations",
            )?,
            tag_cache: env.seconds("TAGWATCH_TAG_CACHE_SECONDS", 60)?,
            park_delay: env.seconds("TAGWATCH_PARK_DELAY_SECONDS", 900)?,
            silence_after: match env.get("TAGWATCH_SILENCE_HOURS") {
                None => Some(Duration::from_secs(6 * 3600)),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(0) => None,
                    Ok(h) if h <= 24 * 366 => Some(Duration::from_secs(h * 3600)),
                    _ => {
                        return Err(ConfigError::Invalid {
                            name: "TAGWATCH_SILENCE_HOURS",
                            value: v,
                            reason: "expected a whole number of hours (0 turns the check off)",
                        })
                    }
                },
            },
            spike_threshold,
            spike_window_seconds: env.count("TAGWATCH_SPIKE_WINDOW_SECONDS")?,
            account_id: env.get("TAGWATCH_ACCOUNT_ID"),
            members: members(&env)?,
            reader_role: env
                .get("TAGWATCH_READER_ROLE")
                .unwrap_or_else(|| "TagwatchReader".to_string()),
            reader_external_id: env.get("TAGWATCH_READER_EXTERNAL_ID"),
            partition: env
                .get("TAGWATCH_PARTITION")
                .unwrap_or_else(|| "aws".to_string()),
            region: env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION")),
            service: env
                .get("POWERTOOLS_SERVICE_NAME")
                .unwrap_or_else(|| "tagwatch".to_string()),
            log_level: log_level(&env)?,
            sdk_log_level: match env.get("TAGWATCH_SDK_LOG_LEVEL") {
                None => tracing::Level::WARN,
                Some(name) => level_named("TAGWATCH_SDK_LOG_LEVEL", name)?,
            },
            function_name: env.get("AWS_LAMBDA_FUNCTION_NAME"),
            memory_size: match env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
                None => None,
                Some(v) => Some(v.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                    name: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    value: v,
                    reason: "expected a whole number of megabytes",
                })?),
            },
            log_stream: env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        })
    }
}

/// The backfill function's settings (`tagwatch-backfill`): no correlation table, no bus (a
/// backfill judges the past; it never pages), a results bucket instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillConfig {
    /// The settings it shares with the watchers, read by [`Config::from_lookup`] itself, with
    /// the same names and defaults except the tag cache (900 s: one invocation reads a whole
    /// batch). `table` and `findings_bus`, which the backfill has not, are empty.
    pub base: Config,
    /// `TAGWATCH_RESULTS_BUCKET`: the items of each run, its findings as JSON lines and a
    /// summary per day.
    pub results_bucket: String,
    /// `TAGWATCH_RESULTS_PREFIX` (default `tagwatch-backfill/`): where in the bucket.
    pub results_prefix: String,
    /// `TAGWATCH_BACKFILL_FETCHES` (default 8): objects fetched at once by one invocation.
    pub fetches: usize,
    /// `TAGWATCH_MAX_RECORD_BYTES` (default 64 MiB): a longer record is reported malformed.
    pub max_record_bytes: usize,
    /// `TAGWATCH_INVENTORY` (optional; `s3://BUCKET/KEY`, `ssm:/NAME` or a file): tags as
    /// `tagwatch replay --inventory` reads them (e.g. a snapshot from the backfilled days);
    /// resources it lists are judged with its tags, the others with live tags.
    pub inventory: Option<IntentSource>,
}

impl BackfillConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let mut base = Config::from_lookup(|k| match k {
            "TAGWATCH_TABLE" | "TAGWATCH_FINDINGS_BUS" => Some("-".to_string()),
            "TAGWATCH_TAG_CACHE_SECONDS" => get(k).or_else(|| Some("900".to_string())),
            _ => get(k),
        })?;
        base.table.clear();
        base.findings_bus.clear();
        let results_prefix = env
            .get("TAGWATCH_RESULTS_PREFIX")
            .unwrap_or_else(|| "tagwatch-backfill/".to_string());
        let results_prefix = match results_prefix.trim_start_matches('/') {
            "" => String::new(),
            p if p.ends_with('/') => p.to_string(),
            p => format!("{p}/"),
        };
        Ok(BackfillConfig {
            base,
            results_bucket: env.required("TAGWATCH_RESULTS_BUCKET")?,
            results_prefix,
            fetches: env.positive(
                "TAGWATCH_BACKFILL_FETCHES",
                8,
                "expected a positive whole number of objects",
            )?,
            max_record_bytes: env.positive(
                "TAGWATCH_MAX_RECORD_BYTES",
                64 * 1024 * 1024,
                "expected a positive whole number of bytes",
            )?,
            inventory: match env.get("TAGWATCH_INVENTORY") {
                None => None,
                Some(v) => Some(source(&env, "TAGWATCH_INVENTORY", v)?),
            },
        })
    }
}

/// The environment as `Config` reads it: a blank value counts as unset.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, k: &str) -> Option<String> {
        (self.0)(k).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, k: &'static str) -> Result<String, ConfigError> {
        self.get(k).ok_or(ConfigError::Missing(k))
    }

    /// A positive whole number, `default` when unset.
    fn positive<T: std::str::FromStr + PartialEq + From<u8>>(
        &self,
        k: &'static str,
        default: T,
        reason: &'static str,
    ) -> Result<T, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<T>() {
                Ok(n) if n != T::from(0) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    name: k,
                    value: v,
                    reason,
                }),
            },
        }
    }

    fn seconds(&self, k: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.positive(k, default, "expected a positive whole number of seconds")
            .map(Duration::from_secs)
    }

    /// An override of an intent setting: `None` when unset or 0 (the intent's value stands).
    fn count(&self, k: &'static str) -> Result<Option<u64>, ConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(n)),
                Err(_) => Err(ConfigError::Invalid {
                    name: k,
                    value: v,
                    reason: "expected a whole number (0 keeps the intent's value)",
                }),
            },
        }
    }
}

/// `TAGWATCH_MEMBER_ACCOUNTS`: none (unset), `*`, or account ids separated by commas.
fn members(env: &Env<'_>) -> Result<crate::ports::Members, ConfigError> {
    use crate::ports::Members;
    let Some(v) = env.get("TAGWATCH_MEMBER_ACCOUNTS") else {
        return Ok(Members::None);
    };
    if v.trim() == "*" {
        return Ok(Members::All);
    }
    let mut accounts = std::collections::BTreeSet::new();
    for a in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid {
                name: "TAGWATCH_MEMBER_ACCOUNTS",
                value: v,
                reason: "expected `*` or 12-digit account ids separated by commas",
            });
        }
        accounts.insert(a.to_string());
    }
    Ok(Members::Only(accounts))
}

/// `TAGWATCH_INTENT`: a parameter, an object, or a file (relative paths from the task root).
fn intent_source(env: &Env<'_>) -> Result<IntentSource, ConfigError> {
    source(env, "TAGWATCH_INTENT", env.required("TAGWATCH_INTENT")?)
}

/// A source setting's value (`name`): a parameter, an object, or a file (relative paths from
/// the task root).
fn source(env: &Env<'_>, name: &'static str, value: String) -> Result<IntentSource, ConfigError> {
    let mut intent = value;
    let is_remote = intent.starts_with("ssm:") || intent.starts_with("s3://");
    let path = intent.strip_prefix("file:").unwrap_or(&intent).to_string();
    if !is_remote && !path.starts_with('/') {
        if let Some(root) = env.get("LAMBDA_TASK_ROOT") {
            intent = format!("{}/{path}", root.trim_end_matches('/'));
        }
    }
    IntentSource::parse(&intent).map_err(|_| ConfigError::Invalid {
        name,
        value: intent.clone(),
        reason: "expected `ssm:/NAME`, `s3://BUCKET/KEY` or a file path",
    })
}

/// `TAGWATCH_LOG_LEVEL`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else INFO.
fn log_level(env: &Env<'_>) -> Result<tracing::Level, ConfigError> {
    let level_name = env
        .get("TAGWATCH_LOG_LEVEL")
        .or_else(|| env.get("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|| "INFO".to_string());
    level_named("TAGWATCH_LOG_LEVEL", level_name)
}

/// A level by name (any letter case); the variable `name` is named in the error.
fn level_named(name: &'static str, level_name: String) -> Result<tracing::Level, ConfigError> {
    Ok(match level_name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => tracing::Level::TRACE,
        "DEBUG" => tracing::Level::DEBUG,
        "INFO" => tracing::Level::INFO,
        "WARN" | "WARNING" => tracing::Level::WARN,
        "ERROR" | "FATAL" => tracing::Level::ERROR,
        _ => {
            return Err(ConfigError::Invalid {
                name,
                value: level_name,
                reason: "expected TRACE, DEBUG, INFO, WARN or ERROR",
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 4] = [
        ("TAGWATCH_INTENT", "ssm:/tagwatch/intent"),
        ("TAGWATCH_TABLE", "t"),
        ("TAGWATCH_FINDINGS_LOG_GROUP", "/tagwatch/findings"),
        ("TAGWATCH_FINDINGS_BUS", "tagwatch-findings"),
    ];

    #[test]
    fn defaults() {
        let c = Config::from_lookup(env(&BASE)).unwrap();
        assert_eq!(c.intent, IntentSource::Ssm("/tagwatch/intent".into()));
        assert_eq!(c.state_ttl, Duration::from_secs(46 * 86_400));
        assert_eq!(c.delivery_lease, Duration::from_secs(40));
        assert_eq!(c.sweep_batch, 500);
        assert_eq!(c.tag_cache, Duration::from_secs(60));
        assert_eq!(c.park_delay, Duration::from_secs(900));
        assert_eq!(c.quarantine_queue_url, None);
        assert_eq!(c.service, "tagwatch");
        assert_eq!(c.log_level, tracing::Level::INFO);
        assert_eq!(c.sdk_log_level, tracing::Level::WARN);
        assert_eq!(c.silence_after, Some(Duration::from_secs(6 * 3600)));
        assert_eq!((c.spike_threshold, c.spike_window_seconds), (None, None));
    }

    #[test]
    fn spike_overrides_zero_keeps_the_intent() {
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_SPIKE_THRESHOLD", "10"));
        pairs.push(("TAGWATCH_SPIKE_WINDOW_SECONDS", "0"));
        let c = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(
            (c.spike_threshold, c.spike_window_seconds),
            (Some(10), None)
        );
        let mut bad = BASE.to_vec();
        bad.push(("TAGWATCH_SPIKE_WINDOW_SECONDS", "-5"));
        assert!(Config::from_lookup(env(&bad)).is_err());
        let mut bad = BASE.to_vec();
        bad.push(("TAGWATCH_SWEEP_BATCH", "0"));
        let err = Config::from_lookup(env(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("TAGWATCH_SWEEP_BATCH") && err.contains("invocations"),
            "{err}"
        );
    }

    #[test]
    fn each_required_setting_is_named_when_missing() {
        for (i, (name, _)) in BASE.iter().enumerate() {
            let rest: Vec<(&str, &str)> = BASE
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            let err = Config::from_lookup(env(&rest)).unwrap_err();
            assert_eq!(err, ConfigError::Missing(name));
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn member_accounts_are_listed_all_or_none() {
        use crate::ports::Members;
        let c = Config::from_lookup(env(&BASE)).unwrap();
        assert_eq!(c.members, Members::None);
        assert_eq!(c.reader_role, "TagwatchReader");
        assert_eq!(c.partition, "aws");
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_MEMBER_ACCOUNTS", " 444455556666, 222233334444 "));
        pairs.push(("TAGWATCH_READER_ROLE", "OrgReader"));
        pairs.push(("TAGWATCH_READER_EXTERNAL_ID", "x-1"));
        let c = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(
            c.members,
            Members::Only(["222233334444".to_string(), "444455556666".to_string()].into())
        );
        assert_eq!(
            (c.reader_role.as_str(), c.reader_external_id.as_deref()),
            ("OrgReader", Some("x-1"))
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_MEMBER_ACCOUNTS", "*"));
        assert_eq!(
            Config::from_lookup(env(&pairs)).unwrap().members,
            Members::All
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_MEMBER_ACCOUNTS", "4444-5555-6666"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(
            err.contains("TAGWATCH_MEMBER_ACCOUNTS") && err.contains("4444-5555-6666"),
            "{err}"
        );
    }

    #[test]
    fn security_hub_export_is_off_unless_a_product_arn_is_set() {
        assert_eq!(Config::from_lookup(env(&BASE)).unwrap().security_hub, None);
        let mut pairs = BASE.to_vec();
        pairs.push((
            "TAGWATCH_SECURITY_HUB_PRODUCT_ARN",
            "arn:aws-us-gov:securityhub:us-gov-west-1:111122223333:product/111122223333/default",
        ));
        let home = Config::from_lookup(env(&pairs))
            .unwrap()
            .security_hub
            .unwrap();
        assert_eq!(
            (
                home.partition.as_str(),
                home.region.as_str(),
                home.account.as_str()
            ),
            ("aws-us-gov", "us-gov-west-1", "111122223333")
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_SECURITY_HUB_PRODUCT_ARN", "true"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(
            err.contains("TAGWATCH_SECURITY_HUB_PRODUCT_ARN") && err.contains("product/"),
            "{err}"
        );
    }

    #[test]
    fn invalid_numbers_and_levels_are_named() {
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_PARK_DELAY_SECONDS", "15m"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(
            err.contains("TAGWATCH_PARK_DELAY_SECONDS") && err.contains("15m"),
            "{err}"
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_LOG_LEVEL", "loud"));
        assert!(Config::from_lookup(env(&pairs)).is_err());
        let mut pairs = BASE.to_vec();
        pairs.push(("AWS_LAMBDA_LOG_LEVEL", "debug"));
        pairs.push(("TAGWATCH_PARK_DELAY_SECONDS", "60"));
        let c = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.log_level, tracing::Level::DEBUG);
        assert_eq!(
            c.sdk_log_level,
            tracing::Level::WARN,
            "Lambda's log level never turns on the libraries' debug logs"
        );
        assert_eq!(c.park_delay, Duration::from_secs(60));
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_SDK_LOG_LEVEL", "trace"));
        let c = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.sdk_log_level, tracing::Level::TRACE);
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_SILENCE_HOURS", "0"));
        assert_eq!(
            Config::from_lookup(env(&pairs)).unwrap().silence_after,
            None
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_SILENCE_HOURS", "6h"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(err.contains("TAGWATCH_SILENCE_HOURS"), "{err}");
        let mut pairs = BASE.to_vec();
        pairs.push(("TAGWATCH_SDK_LOG_LEVEL", "chatty"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(
            err.contains("TAGWATCH_SDK_LOG_LEVEL") && err.contains("chatty"),
            "{err}"
        );
    }

    #[test]
    fn a_bundled_intent_is_found_beside_the_function() {
        let mut pairs = BASE.to_vec();
        pairs[0] = ("TAGWATCH_INTENT", "intent.json");
        pairs.push(("LAMBDA_TASK_ROOT", "/var/task"));
        assert_eq!(
            Config::from_lookup(env(&pairs)).unwrap().intent,
            IntentSource::File("/var/task/intent.json".into())
        );
        pairs[0] = ("TAGWATCH_INTENT", "s3://b/intent.json");
        assert_eq!(
            Config::from_lookup(env(&pairs)).unwrap().intent,
            IntentSource::S3 {
                bucket: "b".into(),
                key: "intent.json".into()
            }
        );
        pairs[0] = ("TAGWATCH_INTENT", "https://example.com/intent.json");
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(
            err.contains("TAGWATCH_INTENT") && err.contains("https://"),
            "{err}"
        );
    }

    #[test]
    fn lambda_sets_the_name_memory_and_stream() {
        let mut pairs = BASE.to_vec();
        pairs.push(("AWS_LAMBDA_FUNCTION_NAME", "tagwatch-sweep"));
        pairs.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"));
        pairs.push(("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/03/[$LATEST]abc"));
        let c = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.function_name.as_deref(), Some("tagwatch-sweep"));
        assert_eq!(c.memory_size, Some(256));
        assert_eq!(c.log_stream.as_deref(), Some("2026/12/03/[$LATEST]abc"));
        pairs.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"));
        let bad: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, v)| *k != "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" || *v == "lots")
            .copied()
            .collect();
        let err = Config::from_lookup(env(&bad)).unwrap_err().to_string();
        assert!(err.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "{err}");
    }

    /// The backfill needs no table and no bus, but its results bucket; it caches tags for a
    /// whole batch by default; its results prefix always names a folder.
    #[test]
    fn the_backfill_reads_the_shared_settings_and_its_own() {
        let base = [
            ("TAGWATCH_INTENT", "ssm:/tagwatch/intent"),
            ("TAGWATCH_FINDINGS_LOG_GROUP", "/tagwatch/findings"),
        ];
        assert_eq!(
            BackfillConfig::from_lookup(env(&base)).unwrap_err(),
            ConfigError::Missing("TAGWATCH_RESULTS_BUCKET")
        );
        let mut pairs = base.to_vec();
        pairs.push(("TAGWATCH_RESULTS_BUCKET", "results"));
        let c = BackfillConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.results_prefix, "tagwatch-backfill/");
        assert_eq!(c.fetches, 8);
        assert_eq!(c.base.tag_cache, Duration::from_secs(900));
        assert!(c.base.table.is_empty() && c.base.findings_bus.is_empty());
        pairs.extend([
            ("TAGWATCH_RESULTS_PREFIX", "/runs"),
            ("TAGWATCH_TAG_CACHE_SECONDS", "60"),
            ("TAGWATCH_MEMBER_ACCOUNTS", "*"),
        ]);
        let c = BackfillConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.results_prefix, "runs/");
        assert_eq!(c.base.tag_cache, Duration::from_secs(60));
        assert_eq!(c.base.members, crate::ports::Members::All);
        assert_eq!(c.inventory, None);
        pairs.push((
            "TAGWATCH_INVENTORY",
            "s3://snapshots/inventory-2026-11.json",
        ));
        let c = BackfillConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(
            c.inventory,
            Some(IntentSource::S3 {
                bucket: "snapshots".into(),
                key: "inventory-2026-11.json".into()
            })
        );
        pairs.push(("TAGWATCH_BACKFILL_FETCHES", "0"));
        assert!(matches!(
            BackfillConfig::from_lookup(env(&pairs)),
            Err(ConfigError::Invalid {
                name: "TAGWATCH_BACKFILL_FETCHES",
                ..
            })
        ));
    }
}
