//! tagwatch's pure core: the IAM policy engine and the intent file.
//!
//! No I/O, no AWS SDK, no async runtime. Callers gather facts (documents, tags, context) and
//! then decide synchronously with [`eval::evaluate`].

pub mod catalog;
pub mod context;
pub mod correlate;
pub mod diag;
pub mod eval;
pub mod event;
pub mod framing;
pub mod intent;
pub mod journal;
pub mod json;
pub mod onemany;
pub mod origin;
pub mod outputs;
pub mod policy;
pub mod principal;
pub mod simulate;
pub mod tags;
pub mod template;
pub mod values;
pub mod verdict;
pub mod wildcard;

pub use context::{ContextValue, Request, RequestContext};
pub use diag::{Diagnostic, Severity};
pub use eval::{evaluate, evaluate_bounded, Bounded, Decision, DecisionReport, Verdict};
pub use intent::Intent;
pub use policy::{NamedPolicy, Policy};
