//! `tagwatch check`: validate, list every error, print warnings.

use std::io::Write;

use serde::Serialize;
use tagwatch_core::{Diagnostic, Severity};

use crate::input::{self, InputError};
use crate::output;
use crate::{CheckArgs, Format};

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
}

/// Runs `check`; returns the exit code (0 valid, 1 invalid).
pub fn run(args: &CheckArgs, out: &mut impl Write) -> Result<u8, InputError> {
    let (file, result) = match (&args.source.policy, &args.source.iam_policy) {
        (Some(p), _) => (
            p.display().to_string(),
            input::load_intent(p, true).map(|parsed| {
                let i = &parsed.value;
                let policies: usize = i.principals.iter().map(|e| e.policies.len()).sum();
                let summary = format!(
                    "{} principal entr{}, {} polic{}, unlisted callers: {}, spike: {} AccessDenied in {} s",
                    i.principals.len(),
                    if i.principals.len() == 1 { "y" } else { "ies" },
                    policies,
                    if policies == 1 { "y" } else { "ies" },
                    match i.unlisted {
                        tagwatch_core::intent::Unlisted::Violation => "violation",
                        tagwatch_core::intent::Unlisted::Ignore => "ignore",
                    },
                    i.spike.threshold,
                    i.spike.window_seconds
                );
                (parsed.warnings, summary)
            }),
        ),
        (None, Some(p)) => (
            p.display().to_string(),
            input::load_policy(p, true).map(|parsed| {
                let n = parsed.value.policy.statements.len();
                (
                    parsed.warnings,
                    format!("{n} statement{}", if n == 1 { "" } else { "s" }),
                )
            }),
        ),
        (None, None) => {
            return Err(InputError::Usage(
                "give --policy INTENT or --iam-policy POLICY".to_string(),
            ))
        }
    };
    let (diagnostics, summary, valid) = match result {
        Ok((warnings, summary)) => (warnings, Some(summary), true),
        Err(InputError::Invalid(diags)) => (diags, None, false),
        Err(e) => return Err(e),
    };
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let w = |e: std::io::Error| InputError::Read {
        path: "<stdout>".to_string(),
        source: e,
    };
    match args.format {
        Format::Json => {
            let report = Report {
                file,
                valid,
                errors,
                warnings,
                diagnostics: &diagnostics,
                summary,
            };
            let line = serde_json::to_string(&report).map_err(InputError::Json)?;
            writeln!(out, "{line}").map_err(w)?;
        }
        Format::Text => {
            for text in output::diagnostic_lines(&diagnostics) {
                writeln!(out, "{text}").map_err(w)?;
            }
            let verdict = if valid { "valid" } else { "invalid" };
            let detail = summary.map(|s| format!("; {s}")).unwrap_or_default();
            writeln!(
                out,
                "{file}: {verdict} ({errors} error{}, {warnings} warning{}){detail}",
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" },
            )
            .map_err(w)?;
        }
    }
    Ok(if valid { 0 } else { 1 })
}
