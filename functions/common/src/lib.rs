//! What tagwatch's Lambda functions share.
//!
//! - [`config`]: settings from the environment, read once (no other module reads it);
//! - [`clock`]: the wall clock;
//! - [`ports`]: the small async traits the pipeline talks to;
//! - [`pipeline`]: one invocation, from the raw event to delivered findings (generic over the
//!   ports, so the functions' handlers are tested with [`fakes`]);
//! - [`aws`]: the ports over tagwatch's AWS adapters, built at cold start;
//! - [`logging`]: JSON logs with the Lambda Powertools key names;
//! - [`runtime`]: every function's `main` (cold start, runtime loop, EMF line per invocation).

pub mod aws;
pub mod clock;
pub mod config;
#[cfg(feature = "fakes")]
pub mod fakes;
pub mod logging;
pub mod pipeline;
pub mod ports;
pub mod runtime;
