//! Diagnostics: validation errors and lint warnings that name the JSON path, the source file
//! and the line and column.

use std::cell::OnceCell;
use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use crate::json::{LineCol, LineIndex, Span};

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
    pub code: &'static str,
    /// The file the document came from, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// JSON path of the element, e.g. `$.Statement[1].Condition.StringEquals`.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<LineCol>,
    pub message: String,
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
    Diagnostic {
        severity: Severity::Error,
        code: "invalid-json",
        file: source.file.map(str::to_string),
        path: "$".to_string(),
        location: Some(source.locate(Span {
            start: e.offset,
            end: e.offset,
        })),
        message: format!("invalid JSON: {}", e.message),
    }
}

/// A JSON path under construction: push a segment, recurse, truncate back.
#[derive(Debug, Clone, Default)]
pub struct JsonPath(String);

impl JsonPath {
    pub fn root() -> Self {
        JsonPath("$".to_string())
    }

    /// Appends `.key` (or `["key"]` when the key is not a plain identifier) and returns the
    /// length to truncate back to.
    pub fn key(&mut self, key: &str) -> usize {
        let len = self.0.len();
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.0.push('.');
            self.0.push_str(key);
        } else {
            self.0.push_str("[\"");
            if !key.contains(|c: char| c == '"' || c == '\\' || u32::from(c) < 0x20) {
                self.0.push_str(key);
                self.0.push_str("\"]");
                return len;
            }
            for c in key.chars() {
                match c {
                    '"' => self.0.push_str("\\\""),
                    '\\' => self.0.push_str("\\\\"),
                    c if u32::from(c) < 0x20 => {
                        let _ = write!(self.0, "\\u{:04x}", u32::from(c));
                    }
                    c => self.0.push(c),
                }
            }
            self.0.push_str("\"]");
        }
        len
    }

    /// Appends `[index]` and returns the length to truncate back to.
    pub fn index(&mut self, index: usize) -> usize {
        let len = self.0.len();
        self.0.push('[');
        let mut digits = [0u8; 20];
        let mut n = index;
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        for d in digits.get(i..).unwrap_or_default() {
            self.0.push(char::from(*d));
        }
        self.0.push(']');
        len
    }

    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Collects diagnostics for one source document.
#[derive(Debug)]
pub struct Reporter<'s, 'a> {
    pub source: &'s SourceText<'a>,
    pub path: JsonPath,
    pub diagnostics: Vec<Diagnostic>,
    /// Run the pitfall lints (`tagwatch check`), not only validation.
    pub lints: bool,
}

impl<'s, 'a> Reporter<'s, 'a> {
    pub fn new(source: &'s SourceText<'a>, path: JsonPath) -> Self {
        Reporter {
            source,
            path,
            diagnostics: Vec::new(),
            lints: false,
        }
    }

    /// Records a diagnostic at the current path.
    pub fn report(&mut self, severity: Severity, code: &'static str, span: Span, message: String) {
        let location = Some(self.source.locate(span));
        self.diagnostics.push(Diagnostic {
            severity,
            code,
            file: self.source.file.map(str::to_string),
            path: self.path.as_str().to_string(),
            location,
            message,
        });
    }

    pub fn error(&mut self, code: &'static str, span: Span, message: String) {
        self.report(Severity::Error, code, span, message);
    }

    pub fn warn(&mut self, code: &'static str, span: Span, message: String) {
        self.report(Severity::Warning, code, span, message);
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
        assert_eq!(p.as_str().get(before..), Some("[1234567]"));
        p.truncate(before);
        p.index(0);
        p.truncate(before);
        p.index(2);
        p.key("Condition");
        p.key("ssm:resourceTag/Finance");
        assert_eq!(
            p.as_str(),
            r#"$.Statement[2].Condition["ssm:resourceTag/Finance"]"#
        );
        p.truncate(a);
        assert_eq!(p.as_str(), "$");
    }

    #[test]
    fn display_names_file_line_and_path() {
        let src = SourceText::new(Some("p.json"), "{\n  \"Effect\": \"Alow\"\n}");
        let mut r = Reporter::new(&src, JsonPath::root());
        r.path.key("Effect");
        r.error(
            "unknown-effect",
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
