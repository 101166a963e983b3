//! Diagnostics: validation errors and lint warnings that name the JSON path, the source file
//! and the line and column.

use std::cell::OnceCell;
use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use crate::json::{LineCol, LineIndex, Span};

pub mod code;
pub use code::Code;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One finding about an input document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable identifier (`unknown-effect`, `resource-tag-on-document`, ...).
    pub code: Code,
    /// The file the document came from, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// JSON path of the element, e.g. `$.Statement[1].Condition.StringEquals`.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<LineCol>,
    /// The bytes of the offending element in the source text, for a snippet under the
    /// message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    pub message: String,
    /// How to fix it, when there is more to say than the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
        }
        if let Some(loc) = self.location {
            write!(f, "{}:{}: ", loc.line, loc.column)?;
        } else if self.file.is_some() {
            f.write_str(" ")?;
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{level}[{}]: {} (at {})",
            self.code, self.message, self.path
        )
    }
}

/// Why a document (a policy, an intent file, an inventory) was rejected: every error found,
/// with the warnings met on the way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct Rejected {
    pub diagnostics: Vec<Diagnostic>,
}

/// Renders a list of diagnostics one per line.
pub fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text a document was parsed from, to turn spans into lines and columns.
#[derive(Debug, Clone)]
pub struct SourceText<'a> {
    pub file: Option<&'a str>,
    pub text: &'a str,
    /// Built on the first diagnostic: valid documents never pay for it.
    index: OnceCell<LineIndex>,
}

impl<'a> SourceText<'a> {
    pub fn new(file: Option<&'a str>, text: &'a str) -> Self {
        SourceText {
            file,
            text,
            index: OnceCell::new(),
        }
    }

    pub fn locate(&self, span: Span) -> LineCol {
        self.index
            .get_or_init(|| LineIndex::new(self.text))
            .locate(self.text, span.start)
    }
}

/// The diagnostic for a JSON syntax error in `source`.
pub fn syntax_error(source: &SourceText<'_>, e: &crate::json::SyntaxError) -> Diagnostic {
    let span = Span {
        start: e.offset,
        end: e.offset,
    };
    Diagnostic {
        severity: Severity::Error,
        code: Code::InvalidJson,
        file: source.file.map(str::to_string),
        path: "$".to_string(),
        location: Some(source.locate(span)),
        span: Some(span),
        message: format!("invalid JSON: {}", e.message),
        help: None,
    }
}

/// A JSON path under construction: push a segment, recurse, truncate back. Segments borrow
/// the document's keys; the path is rendered only when a diagnostic needs it.
#[derive(Debug, Clone, Default)]
pub struct JsonPath<'a>(Vec<Seg<'a>>);

#[derive(Debug, Clone)]
enum Seg<'a> {
    Key(&'a str),
    Owned(String),
    Index(usize),
}

fn render_key(out: &mut String, key: &str) {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        out.push('.');
        out.push_str(key);
        return;
    }
    out.push_str("[\"");
    for c in key.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push_str("\"]");
}

impl<'a> JsonPath<'a> {
    pub fn root() -> Self {
        JsonPath(Vec::with_capacity(8))
    }

    /// Appends `.key` (`["key"]` when the key is not a plain identifier); returns the mark to
    /// truncate back to.
    pub fn key(&mut self, key: &'a str) -> usize {
        self.0.push(Seg::Key(key));
        self.0.len() - 1
    }

    /// Like [`JsonPath::key`] for a key that does not outlive the call.
    pub fn key_owned(&mut self, key: &str) -> usize {
        self.0.push(Seg::Owned(key.to_string()));
        self.0.len() - 1
    }

    /// Appends `[index]`; returns the mark to truncate back to.
    pub fn index(&mut self, index: usize) -> usize {
        self.0.push(Seg::Index(index));
        self.0.len() - 1
    }

    pub fn truncate(&mut self, mark: usize) {
        self.0.truncate(mark);
    }

    /// The current mark (depth).
    pub fn mark(&self) -> usize {
        self.0.len()
    }

    /// `$.Statement[1].Condition["ssm:resourceTag/Finance"]`.
    pub fn render(&self) -> String {
        let mut out = String::from("$");
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => render_key(&mut out, k),
                Seg::Owned(k) => render_key(&mut out, k),
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
}

/// Collects diagnostics for one source document.
#[derive(Debug)]
pub struct Reporter<'s, 'a> {
    pub source: &'s SourceText<'a>,
    pub path: JsonPath<'a>,
    pub diagnostics: Vec<Diagnostic>,
    /// Run the pitfall lints (`tagwatch check`), not only validation.
    pub lints: bool,
}

impl<'s, 'a> Reporter<'s, 'a> {
    pub fn new(source: &'s SourceText<'a>, path: JsonPath<'a>) -> Self {
        Reporter {
            source,
            path,
            diagnostics: Vec::new(),
            lints: false,
        }
    }

    /// Records a diagnostic at the current path.
    pub fn report(&mut self, severity: Severity, code: Code, span: Span, message: String) {
        let location = Some(self.source.locate(span));
        self.diagnostics.push(Diagnostic {
            severity,
            code,
            file: self.source.file.map(str::to_string),
            path: self.path.render(),
            location,
            span: Some(span),
            message,
            help: None,
        });
    }

    pub fn error(&mut self, code: Code, span: Span, message: String) {
        self.report(Severity::Error, code, span, message);
    }

    pub fn warn(&mut self, code: Code, span: Span, message: String) {
        self.report(Severity::Warning, code, span, message);
    }

    /// Adds how to fix it to the diagnostic reported last.
    pub fn help(&mut self, help: impl Into<String>) {
        if let Some(d) = self.diagnostics.last_mut() {
            d.help = Some(help.into());
        }
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_unusual_keys() {
        let mut p = JsonPath::root();
        let a = p.key("Statement");
        let before = p.index(1234567);
        assert_eq!(p.render(), "$.Statement[1234567]");
        p.truncate(before);
        p.index(2);
        p.key("Condition");
        p.key("ssm:resourceTag/Finance");
        assert_eq!(
            p.render(),
            r#"$.Statement[2].Condition["ssm:resourceTag/Finance"]"#
        );
        p.key_owned("a\"b\\c\n");
        assert!(
            p.render().ends_with(r#"["a\"b\\c\u000a"]"#),
            "{}",
            p.render()
        );
        p.truncate(a);
        assert_eq!(p.render(), "$");
    }

    #[test]
    fn display_names_file_line_and_path() {
        let src = SourceText::new(Some("p.json"), "{\n  \"Effect\": \"Alow\"\n}");
        let mut r = Reporter::new(&src, JsonPath::root());
        r.path.key("Effect");
        r.error(
            Code::UnknownEffect,
            Span { start: 14, end: 20 },
            "unknown effect `Alow`".into(),
        );
        assert_eq!(
            r.diagnostics[0].to_string(),
            "p.json:2:13: error[unknown-effect]: unknown effect `Alow` (at $.Effect)"
        );
        assert!(r.has_errors());
    }
}
