//! Policy variables (IAM policy elements: Variables and tags).
//!
//! `${key}` is replaced by the request-context value of `key` (name case-insensitive),
//! `${key, 'default'}` falls back to the default text when the key is absent or multivalued
//! ("you can use any single-valued context key as a policy variable, but not multivalued
//! keys"), `''` inside a default is one quote, and `${*}`, `${?}`, `${$}` stand for the literal
//! characters. Variables are recognised only in policies with `"Version": "2012-10-17"`; in
//! older versions the text is literal. Substituted values are literal text: a `*` that comes
//! from a tag value is not a wildcard.

use crate::iam::request::{ContextValue, RequestContext};
use crate::iam::wildcard::Token;

/// One piece of a value that may contain policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text and wildcards.
    Tokens(Vec<Token>),
    /// A variable reference.
    Var(Variable),
}

/// `${key}` or `${key, 'default'}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The key as written.
    pub key: String,
    /// Lowercased key, for lookups.
    pub key_lower: String,
    pub default: Option<String>,
}

/// A value split into literal tokens and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub parts: Vec<Part>,
}

/// Why a template could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The variable's key as written.
    pub key: String,
    /// True when the key was present but multivalued.
    pub multivalued: bool,
}

impl Template {
    /// Splits `text`; with `variables == false` (policy version 2008-10-17 or none) the text is
    /// taken literally apart from `*` and `?`.
    pub fn parse(text: &str, variables: bool) -> Template {
        let mut parts = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if variables && rest.starts_with("${") {
                if let Some((var, after)) = parse_variable(rest) {
                    match var {
                        Parsed::Escape(c) => tokens.push(Token::Lit(c)),
                        Parsed::Var(v) => {
                            if !tokens.is_empty() {
                                parts.push(Part::Tokens(std::mem::take(&mut tokens)));
                            }
                            parts.push(Part::Var(v));
                        }
                    }
                    rest = after;
                    continue;
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                tokens.push(match c {
                    '*' => Token::Star,
                    '?' => Token::One,
                    c => Token::Lit(c),
                });
            }
            rest = chars.as_str();
        }
        if !tokens.is_empty() || parts.is_empty() {
            parts.push(Part::Tokens(tokens));
        }
        Template { parts }
    }

    /// True when the value refers to at least one variable.
    pub fn has_variables(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// The variables referred to.
    pub fn variables(&self) -> impl Iterator<Item = &Variable> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Tokens(_) => None,
        })
    }

    /// The tokens with variables filled in from `context`.
    pub fn resolve(&self, context: &RequestContext) -> Result<Vec<Token>, Unresolved> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Tokens(t) => out.extend_from_slice(t),
                Part::Var(v) => {
                    let text = match context.get_lower(&v.key_lower) {
                        Some(ContextValue::Single(s)) => s.as_str(),
                        found => match &v.default {
                            Some(d) => d.as_str(),
                            None => {
                                return Err(Unresolved {
                                    key: v.key.clone(),
                                    multivalued: found.is_some(),
                                })
                            }
                        },
                    };
                    out.extend(text.chars().map(Token::Lit));
                }
            }
        }
        Ok(out)
    }

    /// The literal tokens when there are no variables.
    pub fn static_tokens(&self) -> Option<Vec<Token>> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Tokens(t) => out.extend_from_slice(t),
                Part::Var(_) => return None,
            }
        }
        Some(out)
    }
}

/// Tokens back to text, wildcards as their characters (for equality operators).
pub fn tokens_to_string(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            Token::Lit(c) => *c,
            Token::Star => '*',
            Token::One => '?',
        })
        .collect()
}

enum Parsed {
    Escape(char),
    Var(Variable),
}

/// Parses `${...}` at the start of `s`; `None` when it is not a well-formed variable (the text
/// is then literal).
fn parse_variable(s: &str) -> Option<(Parsed, &str)> {
    let body_start = s.get(2..)?;
    // Find the closing brace, skipping over a quoted default where `''` is an escaped quote.
    let mut in_quote = false;
    let mut end = None;
    let bytes = body_start.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' if in_quote && bytes.get(i + 1) == Some(&b'\'') => i += 1,
            b'\'' => in_quote = !in_quote,
            b'}' if !in_quote => {
                end = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let end = end?;
    let body = body_start.get(..end)?;
    let after = body_start.get(end + 1..)?;
    match body.trim() {
        "*" => return Some((Parsed::Escape('*'), after)),
        "?" => return Some((Parsed::Escape('?'), after)),
        "$" => return Some((Parsed::Escape('$'), after)),
        _ => {}
    }
    let (key, default) = match body.split_once(',') {
        None => (body.trim(), None),
        Some((k, d)) => {
            let d = d.trim();
            let inner = d.strip_prefix('\'')?.strip_suffix('\'')?;
            if inner.replace("''", "").contains('\'') {
                return None;
            }
            (k.trim(), Some(inner.replace("''", "'")))
        }
    };
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((
        Parsed::Var(Variable {
            key: key.to_string(),
            key_lower: key.to_ascii_lowercase(),
            default,
        }),
        after,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        let mut c = RequestContext::new();
        c.insert("aws:username", "alice");
        c.insert("aws:PrincipalTag/team", "web");
        c.insert_multi("aws:TagKeys", vec!["a".into(), "b".into()]);
        c
    }

    fn resolve(t: &str) -> Result<String, Unresolved> {
        Template::parse(t, true)
            .resolve(&ctx())
            .map(|t| tokens_to_string(&t))
    }

    #[test]
    fn substitutes_variables_case_insensitively() {
        assert_eq!(resolve("home/${aws:username}/*").unwrap(), "home/alice/*");
        assert_eq!(resolve("${AWS:UserName}").unwrap(), "alice");
        assert_eq!(resolve("${aws:PrincipalTag/team}-x").unwrap(), "web-x");
    }

    #[test]
    fn missing_key_without_default_is_unresolved() {
        // IAM policy variables: "If AWS cannot resolve a variable this might cause the entire
        // statement to be invalid."
        let e = resolve("${aws:PrincipalTag/cost}").unwrap_err();
        assert_eq!(e.key, "aws:PrincipalTag/cost");
        assert!(!e.multivalued);
    }

    #[test]
    fn defaults_and_quote_escapes() {
        // IAM policy variables, "Specifying default values": `${key, 'default'}`.
        assert_eq!(resolve("${aws:PrincipalTag/cost, 'none'}").unwrap(), "none");
        assert_eq!(resolve("${aws:username, 'x'}").unwrap(), "alice");
        assert_eq!(
            resolve("${aws:PrincipalTag/cost, 'it''s'}").unwrap(),
            "it's"
        );
    }

    #[test]
    fn multivalued_keys_are_not_variables() {
        // "You can use any available single-valued context key as a policy variable. You can't
        // use a multivalued context key as a policy variable."
        let e = resolve("${aws:TagKeys}").unwrap_err();
        assert!(e.multivalued);
        assert_eq!(resolve("${aws:TagKeys, 'd'}").unwrap(), "d");
    }

    #[test]
    fn special_characters_are_literal() {
        let t = Template::parse("a${*}b${?}c${$}d*", true);
        let tokens = t.static_tokens().unwrap();
        assert_eq!(tokens[1], Token::Lit('*'));
        assert_eq!(tokens[3], Token::Lit('?'));
        assert_eq!(tokens[5], Token::Lit('$'));
        assert_eq!(tokens[7], Token::Star);
    }

    #[test]
    fn old_version_takes_text_literally() {
        let t = Template::parse("${aws:username}", false);
        assert!(!t.has_variables());
        assert_eq!(
            tokens_to_string(&t.static_tokens().unwrap()),
            "${aws:username}"
        );
    }

    #[test]
    fn malformed_variables_are_literal_text() {
        for s in [
            "${aws:username",
            "${}",
            "${a b}",
            "${k, default}",
            "${k, 'x}",
        ] {
            let t = Template::parse(s, true);
            assert!(!t.has_variables(), "{s}");
        }
    }

    #[test]
    fn substituted_values_are_not_wildcards() {
        let mut c = RequestContext::new();
        c.insert("aws:PrincipalTag/p", "a*");
        let t = Template::parse("${aws:PrincipalTag/p}", true)
            .resolve(&c)
            .unwrap();
        assert_eq!(t, vec![Token::Lit('a'), Token::Lit('*')]);
    }
}
