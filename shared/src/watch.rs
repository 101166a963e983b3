//! The watcher: from normalised events to findings, with the state correlation needs.

pub mod asff;
pub mod context;
pub mod correlation;
pub mod counts;
pub mod dedupe;
pub mod event;
pub mod finding;
pub mod journal;
pub mod links;
pub mod origin;
pub mod outputs;
pub mod silence;
pub mod skeleton;
pub mod tags;
pub mod watcher;
