//! Human output. Colour follows `anstream`'s choice for the stream: only on a terminal, off
//! with `NO_COLOR`, forced with `CLICOLOR_FORCE`; styles are `anstyle`'s.

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Style};
use tagwatch_core::{Diagnostic, Severity, Verdict};

use crate::input::InputError;

const RED: Style = AnsiColor::Red.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();

fn colour(choice: ColorChoice) -> bool {
    choice != ColorChoice::Never
}

fn colour_stdout() -> bool {
    colour(AutoStream::choice(&std::io::stdout()))
}

fn colour_stderr() -> bool {
    colour(AutoStream::choice(&std::io::stderr()))
}

fn paint(on: bool, style: Style, text: &str) -> String {
    if on {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// Why a command failed, as the CLI reports it on stderr (exit status 2).
#[derive(Debug)]
pub enum Failure {
    /// Invalid input: its diagnostics, each shown by severity.
    Diagnostics(Vec<Diagnostic>),
    /// Anything else, shown as one error.
    Other(String),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Invalid(diags) => Failure::Diagnostics(diags),
            other => Failure::Other(other.to_string()),
        }
    }
}

/// A failure's text for stderr.
pub fn failure_text(f: &Failure) -> String {
    let on = colour_stderr();
    match f {
        Failure::Diagnostics(diags) => diags
            .iter()
            .map(|d| paint(on, severity_style(d.severity), &d.to_string()))
            .collect::<Vec<_>>()
            .join("\n"),
        Failure::Other(text) => paint(on, RED, text),
    }
}

fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Error => RED,
        Severity::Warning => YELLOW,
    }
}

/// One diagnostic line for stdout.
pub fn diagnostic_line(d: &Diagnostic) -> String {
    paint(colour_stdout(), severity_style(d.severity), &d.to_string())
}

/// The verdict as shown to people.
pub fn verdict_label(v: Verdict) -> String {
    let (colour, text) = match v {
        Verdict::Allow => (AnsiColor::Green, "ALLOW"),
        Verdict::ExplicitDeny => (AnsiColor::Red, "DENY (explicit)"),
        Verdict::ImplicitDeny => (AnsiColor::Yellow, "DENY (implicit)"),
    };
    paint(colour_stdout(), colour.on_default().bold(), text)
}
