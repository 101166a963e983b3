//! tagwatch's pure core: the decisions behind every tagwatch function and command.
//!
//! - [`iam`]: IAM identity-based policies: the policy model, parser and lints, condition
//!   operators and typed values, wildcards, the `ssm` action and condition-key catalog, policy
//!   variables, the evaluator, and `simulate`'s request lines;
//! - [`intent`]: the intent file (which principals *should* be able to do what), the callers it
//!   names, and the inventory of resource tags;
//! - [`watch`]: the watcher: events normalised from EventBridge and CloudTrail, the request
//!   context IAM built for a call, correlation state and its journal, findings, and what leaves
//!   the core (log lines, metrics, bus entries);
//! - [`archive`]: CloudTrail's S3 layout and the selection of an archive by account, region and
//!   day;
//! - [`json`], [`diag`], [`framing`], [`logfile`], [`replay`]: the spanned JSON parser,
//!   diagnostics with positions, the framing of replay input into records, CloudTrail log
//!   files split into records by structure, and the records of an input, prefiltered and
//!   parsed.
//!
//! No I/O, no AWS SDK, no async runtime. Callers gather facts (documents, tags, correlation
//! state) and then decide synchronously: [`evaluate`] for one request, [`watch::watcher::Watcher`]
//! for one event.

pub mod archive;
pub mod diag;
pub mod framing;
pub mod iam;
pub mod intent;
pub mod json;
pub mod logfile;
pub mod replay;
pub mod watch;

pub use diag::{Diagnostic, Severity};
pub use iam::evaluator::{evaluate, evaluate_bounded, Bounded, Decision, DecisionReport, Verdict};
pub use iam::policy::{NamedPolicy, Policy};
pub use iam::request::{ContextValue, Request, RequestContext};
pub use intent::Intent;
