//! Human output. Colour follows `anstream`'s choice for the stream: only on a terminal, off
//! with `NO_COLOR`, forced with `CLICOLOR_FORCE`; styles are `anstyle`'s.

use annotate_snippets::{Level, Renderer, Snippet};
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
        Failure::Diagnostics(diags) => diagnostics_text(diags, on).join("\n"),
        Failure::Other(text) => paint(on, RED, text),
    }
}

fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Error => RED,
        Severity::Warning => YELLOW,
    }
}

/// The diagnostics for stdout, one entry each: its line, then the offending source with a
/// caret.
pub fn diagnostic_lines(diags: &[Diagnostic]) -> Vec<String> {
    diagnostics_text(diags, colour_stdout())
}

/// Diagnostics as people read them: each one's line in the form scripts match
/// (`file:line:col: error[code]: message (at path)`), then, when its file can be read again and
/// it has a span, the offending line with a caret under the element and the help. Each file is
/// read once, however many diagnostics it has.
fn diagnostics_text(diags: &[Diagnostic], on: bool) -> Vec<String> {
    let mut sources: std::collections::HashMap<&str, Option<String>> =
        std::collections::HashMap::new();
    diags
        .iter()
        .map(|d| {
            let line = paint(on, severity_style(d.severity), &d.to_string());
            let source = d
                .file
                .as_deref()
                .filter(|f| *f != "<stdin>" && *f != "-")
                .and_then(|f| {
                    sources
                        .entry(f)
                        .or_insert_with(|| std::fs::read_to_string(f).ok())
                        .as_deref()
                });
            match source.and_then(|text| snippet(d, text, on)) {
                Some(snippet) => format!("{line}\n{snippet}"),
                None => line,
            }
        })
        .collect()
}

/// The source lines of `d`'s span with a caret under it (annotate-snippets' rendering, without
/// its title line: the diagnostic's own line says that). `None` when the span does not fit
/// the text (the file changed since it was read).
fn snippet(d: &Diagnostic, text: &str, on: bool) -> Option<String> {
    let span = d.span?;
    let range = caret_range(text, span.start, span.end)?;
    let level = match d.severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
    };
    let origin = d.file.as_deref().unwrap_or_default();
    let mut message = level.title(&d.message).snippet(
        Snippet::source(text)
            .origin(origin)
            .fold(true)
            .annotation(level.span(range).label(&d.path)),
    );
    if let Some(help) = &d.help {
        message = message.footer(Level::Help.title(help));
    }
    let renderer = if on {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let rendered = renderer.render(message).to_string();
    let body = rendered.split_once('\n').map(|(_, rest)| rest)?;
    Some(body.trim_end().to_string())
}

/// The byte range to underline: the span when it lies on character boundaries of `text`,
/// widened to one character when it is empty (a JSON syntax error points between bytes), the
/// last character for a span at the very end.
fn caret_range(text: &str, start: usize, end: usize) -> Option<std::ops::Range<usize>> {
    if text.is_empty() || start > end || end > text.len() {
        return None;
    }
    if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return None;
    }
    if start < end {
        return Some(start..end);
    }
    match text.get(start..).and_then(|rest| rest.chars().next()) {
        Some(c) => Some(start..start + c.len_utf8()),
        None => {
            let last = text.char_indices().next_back()?.0;
            Some(last..text.len())
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_core::diag::{JsonPath, Reporter, SourceText};
    use tagwatch_core::json::Span;

    fn diagnostic(text: &str, span: Span) -> Diagnostic {
        let src = SourceText::new(Some("p.json"), text);
        let mut r = Reporter::new(&src, JsonPath::root());
        r.path.key("Effect");
        r.error(
            tagwatch_core::diag::Code::UnknownEffect,
            span,
            "unknown effect `Alow`".into(),
        );
        r.help("write `Allow` or `Deny`");
        r.diagnostics.remove(0)
    }

    #[test]
    fn the_snippet_underlines_the_element_and_gives_the_help() {
        let text = "{\n  \"Effect\": \"Alow\"\n}";
        let d = diagnostic(text, Span { start: 14, end: 20 });
        let s = snippet(&d, text, false).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].contains("--> p.json:2:13"), "{s}");
        let source = lines
            .iter()
            .position(|l| l.contains("\"Effect\": \"Alow\""))
            .unwrap();
        let caret = lines[source + 1];
        let col = caret.find('^').unwrap();
        assert_eq!(&lines[source][col..col + 6], "\"Alow\"", "{s}");
        assert!(caret.contains("^^^^^^ $.Effect"), "{s}");
        assert!(s.contains("= help: write `Allow` or `Deny`"), "{s}");
    }

    #[test]
    fn spans_that_do_not_fit_the_text_give_no_snippet() {
        let text = "{\"é\": 1}";
        assert_eq!(caret_range(text, 3, 3), None, "inside a character");
        assert_eq!(caret_range(text, 2, 99), None, "past the end");
        assert_eq!(caret_range(text, 5, 2), None, "reversed");
        assert_eq!(caret_range("", 0, 0), None);
        assert_eq!(caret_range(text, 2, 2), Some(2..4), "empty: one character");
        assert_eq!(
            caret_range(text, text.len(), text.len()),
            Some(text.len() - 1..text.len())
        );
        let d = diagnostic(text, Span { start: 3, end: 3 });
        assert_eq!(snippet(&d, text, false), None);
    }
}
