//! IAM identity-based policy documents: the compiled model and statement matching.
//!
//! Parse with [`Policy::parse`]; the result is compiled (wildcards pre-built, values typed)
//! and evaluated many times by [`crate::iam::evaluator`].

pub mod condition;
mod lint;
mod parse;

use serde::Serialize;

use crate::diag::{self, Diagnostic, Rejected};
use crate::iam::request::RequestContext;
use crate::iam::variables::Template;
use crate::iam::wildcard::{Flavor, Pattern};
use condition::Condition;

pub use parse::parse_policy_json;

/// The policy language version. Only `2012-10-17` recognises policy variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Version {
    #[serde(rename = "2012-10-17")]
    V2012,
    #[serde(rename = "2008-10-17")]
    V2008,
    /// No `Version` element (treated like 2008-10-17).
    #[serde(rename = "none")]
    Missing,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// A compiled policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    pub version: Version,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// One compiled statement.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Position in the `Statement` array (0-based, as in the JSON path).
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Matcher<Pattern>,
    pub resources: Matcher<ResourcePattern>,
    pub conditions: Vec<Condition>,
}

/// `Action` / `NotAction` or `Resource` / `NotResource`.
#[derive(Debug, Clone)]
pub struct Matcher<P> {
    /// True for `NotAction` / `NotResource`.
    pub negated: bool,
    pub patterns: Vec<P>,
}

/// One `Resource` entry: compiled now, or a template with policy variables.
#[derive(Debug, Clone)]
pub enum ResourcePattern {
    Static(Pattern),
    Template { source: String, template: Template },
}

impl ResourcePattern {
    pub fn as_str(&self) -> &str {
        match self {
            ResourcePattern::Static(p) => p.as_str(),
            ResourcePattern::Template { source, .. } => source,
        }
    }

    /// Matches `resource`; a variable with no value matches no resource (IAM policy variables,
    /// "Policy variables with no value").
    fn matches(&self, resource: &str, ctx: &RequestContext, missing: &mut Vec<String>) -> bool {
        match self {
            ResourcePattern::Static(p) => p.matches(resource),
            ResourcePattern::Template { source, template } => {
                condition::resolve(template, ctx, missing).is_some_and(|tokens| {
                    Pattern::from_tokens(source, &tokens, Flavor::ResourceArn, false)
                        .matches(resource)
                })
            }
        }
    }
}

/// How far a statement got in matching a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementMatch {
    /// The action is not covered.
    Action,
    /// The action is covered, the resource is not.
    Resource,
    /// Action and resource are covered; the condition at this index failed.
    Condition(usize),
    /// The statement applies.
    Applies,
}

impl Statement {
    /// Does the statement cover the action (case-insensitive)?
    pub fn covers_action(&self, action: &str) -> bool {
        let hit = self.actions.patterns.iter().any(|p| p.matches(action));
        hit != self.actions.negated
    }

    /// Matches the statement against a request; missing context keys go to `missing`.
    pub fn matches(
        &self,
        action: &str,
        resource: &str,
        ctx: &RequestContext,
        missing: &mut Vec<String>,
    ) -> StatementMatch {
        self.matches_assuming(action, resource, ctx, missing, None)
    }

    /// [`Statement::matches`], with every test that reads an unknown key (a condition, or a
    /// resource pattern's policy variable) passing exactly when `unknown_holds` says.
    pub fn matches_assuming(
        &self,
        action: &str,
        resource: &str,
        ctx: &RequestContext,
        missing: &mut Vec<String>,
        unknown_holds: Option<bool>,
    ) -> StatementMatch {
        if !self.covers_action(action) {
            return StatementMatch::Action;
        }
        let unknown_resource = unknown_holds.and_then(|holds| {
            let key = self.resources.patterns.iter().find_map(|p| match p {
                ResourcePattern::Template { template, .. } => template
                    .variables()
                    .find(|v| ctx.is_unknown_lower(&v.key_lower))
                    .map(|v| v.key.clone()),
                ResourcePattern::Static(_) => None,
            })?;
            condition::note_missing(missing, &key);
            Some(holds)
        });
        let covered = match unknown_resource {
            Some(holds) => holds,
            None => {
                let hit = self
                    .resources
                    .patterns
                    .iter()
                    .any(|p| p.matches(resource, ctx, missing));
                hit != self.resources.negated
            }
        };
        if !covered {
            return StatementMatch::Resource;
        }
        // Several operators, and several keys under one operator: all must hold (AND).
        for (i, c) in self.conditions.iter().enumerate() {
            if !c.evaluate_assuming(ctx, missing, unknown_holds) {
                return StatementMatch::Condition(i);
            }
        }
        StatementMatch::Applies
    }

    /// `statement 2 (Sid WebServers)`: 1-based for people.
    pub fn describe(&self) -> String {
        match &self.sid {
            Some(sid) if !sid.is_empty() => format!("statement {} (Sid {sid})", self.index + 1),
            _ => format!("statement {}", self.index + 1),
        }
    }
}

/// A policy with the name it is reported under (a file name, or an intent entry and index).
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    pub name: String,
    pub policy: Policy,
}

/// A parse result: the value and the warnings met on the way.
#[derive(Debug, Clone)]
pub struct Parsed<T> {
    pub value: T,
    pub warnings: Vec<Diagnostic>,
}

impl Policy {
    /// Parses, validates and compiles a policy document. `file` names it in diagnostics.
    /// Warnings are the validation ones (ignored `Principal`, missing `Version`, ...).
    pub fn parse(text: &str, file: Option<&str>) -> Result<Parsed<Policy>, Rejected> {
        Self::parse_with(text, file, false)
    }

    /// [`Policy::parse`] plus the pitfall lints of `tagwatch check` as warnings.
    pub fn check(text: &str, file: Option<&str>) -> Result<Parsed<Policy>, Rejected> {
        Self::parse_with(text, file, true)
    }

    fn parse_with(text: &str, file: Option<&str>, lints: bool) -> Result<Parsed<Policy>, Rejected> {
        let source = diag::SourceText::new(file, text);
        let arena = crate::json::Bump::with_capacity(text.len() * 6);
        let json = match crate::json::parse(text, &arena) {
            Ok(j) => j,
            Err(e) => {
                return Err(Rejected {
                    diagnostics: vec![diag::syntax_error(&source, &e)],
                });
            }
        };
        let mut reporter = diag::Reporter::new(&source, diag::JsonPath::root());
        reporter.lints = lints;
        let policy = parse_policy_json(&json, &mut reporter);
        match policy {
            Some(p) if !reporter.has_errors() => Ok(Parsed {
                value: p,
                warnings: reporter.diagnostics,
            }),
            _ => Err(Rejected {
                diagnostics: reporter.diagnostics,
            }),
        }
    }
}
