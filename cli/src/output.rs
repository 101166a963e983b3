//! Human output: colour only on a terminal and when `NO_COLOR` is unset.

use std::io::IsTerminal;

use tagwatch_core::{Diagnostic, Severity, Verdict};

fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// An error message for stderr.
pub fn paint_error(text: &str) -> String {
    let on = colour_stderr();
    text.lines()
        .map(|l| {
            if l.contains("error[") || l.starts_with("cannot") {
                paint(on, "31", l)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One diagnostic line for stdout.
pub fn diagnostic_line(d: &Diagnostic) -> String {
    let code = match d.severity {
        Severity::Error => "31",
        Severity::Warning => "33",
    };
    paint(colour_stdout(), code, &d.to_string())
}

/// The verdict as shown to people.
pub fn verdict_label(v: Verdict) -> String {
    let (code, text) = match v {
        Verdict::Allow => ("1;32", "ALLOW"),
        Verdict::ExplicitDeny => ("1;31", "DENY (explicit)"),
        Verdict::ImplicitDeny => ("1;33", "DENY (implicit)"),
    };
    paint(colour_stdout(), code, text)
}
