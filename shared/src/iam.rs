//! IAM identity-based policies, evaluated as IAM does (IAM: "Policy evaluation logic").

pub mod catalog;
pub mod evaluator;
pub mod intern;
pub mod onemany;
pub mod policy;
pub mod request;
pub mod simulate;
pub mod values;
pub mod variables;
pub mod wildcard;
