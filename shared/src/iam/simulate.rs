//! Request lines for `tagwatch simulate`:
//! `{"action": "ssm:SendCommand", "resource": "arn:...", "context": {"k": "v", "m": ["a", "b"]}}`
//! with optional `"tags": {"Env": "prod"}` (shorthand for `ssm:resourceTag/Env` and
//! `aws:ResourceTag/Env`) and `"principal": "arn:..."` (when simulating through an intent).

use crate::diag::Code;
use crate::diag::{Diagnostic, JsonPath, Reporter, SourceText};
use crate::iam::request::Request;
use crate::json::{self, Json, JsonKind};

/// One parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub request: Request,
    /// The caller ARN for this line, overriding the command line's.
    pub principal: Option<String>,
}

const FIELDS: &[&str] = &["action", "resource", "context", "tags", "principal"];

fn scalar(v: &Json) -> Option<String> {
    match &v.kind {
        JsonKind::String(s) => Some(s.to_string()),
        JsonKind::Number(n) => Some((*n).to_string()),
        JsonKind::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses one request line. `line_no` (1-based) is the line's number in `file`; errors carry
/// that line and the column within it.
pub fn parse_request_line(
    text: &str,
    file: Option<&str>,
    line_no: usize,
) -> Result<RequestSpec, Vec<Diagnostic>> {
    let source = SourceText::new(file, text);
    let relocate = |mut d: Diagnostic| {
        if let Some(loc) = d.location.as_mut() {
            loc.line = line_no;
        }
        d
    };
    let arena = json::Bump::new();
    let json = match json::parse(text, &arena) {
        Ok(j) => j,
        Err(e) => {
            let d = crate::diag::syntax_error(&source, &e);
            return Err(vec![relocate(d)]);
        }
    };
    let mut r = Reporter::new(&source, JsonPath::root());
    let spec = parse_spec(&json, &mut r);
    match spec {
        Some(spec) if !r.has_errors() => Ok(spec),
        _ => Err(r.diagnostics.into_iter().map(relocate).collect()),
    }
}

fn required_string<'j>(
    json: &'j Json<'j>,
    field: &'j str,
    r: &mut Reporter<'_, 'j>,
) -> Option<String> {
    match json.get(field) {
        None => {
            r.error(
                Code::MissingField,
                json.span,
                format!("the request has no `{field}`"),
            );
            None
        }
        Some(v) => match v.as_str() {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            _ => {
                let m = r.path.key(field);
                r.error(
                    Code::InvalidField,
                    v.span,
                    format!(
                        "`{field}` must be a non-empty string, found {}",
                        v.type_name()
                    ),
                );
                r.path.truncate(m);
                None
            }
        },
    }
}

fn parse_spec<'j>(json: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> Option<RequestSpec> {
    let Some(members) = json.as_object() else {
        r.error(
            Code::NotAnObject,
            json.span,
            format!(
                "a request must be a JSON object, found {}",
                json.type_name()
            ),
        );
        return None;
    };
    for m in members {
        if !FIELDS.contains(&m.key) {
            let mark = r.path.key(m.key);
            r.error(
                Code::UnknownField,
                m.key_span,
                format!(
                    "unknown request field `{}`; expected `action`, `resource`, `context`, `tags` or `principal`",
                    m.key
                ),
            );
            r.path.truncate(mark);
        }
    }
    let action = required_string(json, "action", r);
    let resource = required_string(json, "resource", r);
    let principal = match json.get("principal") {
        None => None,
        Some(_) => Some(required_string(json, "principal", r)?),
    };
    let mut request = Request::new(action.unwrap_or_default(), resource.unwrap_or_default());
    if let Some(ctx) = json.get("context") {
        let mark = r.path.key("context");
        match ctx.as_object() {
            None => r.error(
                Code::InvalidContext,
                ctx.span,
                format!(
                    "`context` must be an object of keys to values, found {}",
                    ctx.type_name()
                ),
            ),
            Some(entries) => {
                for e in entries {
                    let m = r.path.key(e.key);
                    match &e.value.kind {
                        JsonKind::Array(items) => {
                            let vals: Option<Vec<String>> = items.iter().map(scalar).collect();
                            match vals {
                                Some(v) => request.context.insert_multi(e.key, v),
                                None => r.error(
                                    Code::InvalidContext,
                                    e.value.span,
                                    "a multivalued context key must be an array of strings, numbers or booleans".to_string(),
                                ),
                            }
                        }
                        _ => match scalar(&e.value) {
                            Some(v) => request.context.insert(e.key, v),
                            None => r.error(
                                Code::InvalidContext,
                                e.value.span,
                                format!("context values must be strings, numbers, booleans or arrays, found {}", e.value.type_name()),
                            ),
                        },
                    }
                    r.path.truncate(m);
                }
            }
        }
        r.path.truncate(mark);
    }
    if let Some(tags) = json.get("tags") {
        let mark = r.path.key("tags");
        match tags.as_object() {
            None => r.error(
                Code::InvalidTags,
                tags.span,
                format!(
                    "`tags` must be an object of tag keys to values, found {}",
                    tags.type_name()
                ),
            ),
            Some(entries) => {
                let pairs = crate::iam::values::tag_pairs(entries, Code::InvalidTags, r)
                    .unwrap_or_default();
                request.context.set_resource_tags(pairs);
            }
        }
        r.path.truncate(mark);
    }
    Some(RequestSpec { request, principal })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_context_tags_and_multivalued_keys() {
        let spec = parse_request_line(
            r#"{"action":"ssm:SendCommand","resource":"arn:aws:ec2:us-east-1:1:instance/i-1","context":{"ssm:resourceTag/Finance":"WebServers","aws:TagKeys":["a","b"],"aws:EpochTime":1700000000},"tags":{"Env":"prod"}}"#,
            None,
            1,
        )
        .unwrap();
        let c = &spec.request.context;
        assert_eq!(
            c.get("ssm:resourcetag/finance").unwrap().values(),
            ["WebServers"]
        );
        assert_eq!(c.get("aws:TagKeys").unwrap().values(), ["a", "b"]);
        assert_eq!(c.get("aws:EpochTime").unwrap().values(), ["1700000000"]);
        assert_eq!(c.get("aws:ResourceTag/Env").unwrap().values(), ["prod"]);
        assert_eq!(spec.principal, None);
    }

    #[test]
    fn errors_carry_the_file_line_column_and_path() {
        let e = parse_request_line(
            r#"{"action":"ssm:SendCommand","resource":7}"#,
            Some("r.jsonl"),
            12,
        )
        .unwrap_err();
        assert_eq!(e[0].path, "$.resource");
        assert_eq!(e[0].location.unwrap().line, 12);
        assert_eq!(e[0].location.unwrap().column, 40);
        assert_eq!(e[0].file.as_deref(), Some("r.jsonl"));
        let e = parse_request_line(r#"{"action": "x""#, None, 3).unwrap_err();
        assert_eq!(e[0].code, "invalid-json");
        let e = parse_request_line(r#"{"action":"a","resource":"r","contxt":{}}"#, None, 1)
            .unwrap_err();
        assert_eq!(e[0].code, "unknown-field");
        let e = parse_request_line(r#"{"resource":"r"}"#, None, 1).unwrap_err();
        assert!(e[0].message.contains("`action`"));
    }
}
