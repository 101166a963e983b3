//! `tagwatch simulate`: decide requests against an IAM policy or an intent file.
//!
//! Every input is validated before anything is printed, so a bad line never leaves a partial
//! result behind: the command either prints one result per request, in order, or exits 2 with
//! every problem listed.

use std::io::{IsTerminal, Write};

use serde::Serialize;
use tagwatch_core::diag::Code;
use tagwatch_core::iam::simulate::{parse_request_line, RequestSpec};
use tagwatch_core::intent::principal::Caller;
use tagwatch_core::intent::Unlisted;
use tagwatch_core::{evaluate, DecisionReport, Diagnostic, Intent, NamedPolicy, Request, Severity};

use crate::input::{self, InputError};
use crate::output;
use crate::{Format, SimulateArgs};

enum Engine {
    Policy(NamedPolicy),
    Intent(Intent),
}

/// How the intent applied to the caller of one request.
#[derive(Serialize)]
struct PrincipalInfo {
    arn: String,
    /// Names of the intent entries that matched.
    entries: Vec<String>,
    unlisted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    unlisted_policy: Option<Unlisted>,
}

#[derive(Serialize)]
struct Line<'a> {
    action: &'a str,
    resource: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<PrincipalInfo>,
    #[serde(flatten)]
    report: DecisionReport,
}

fn usage(msg: impl Into<String>) -> InputError {
    InputError::Usage(msg.into())
}

fn split_kv<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), InputError> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(usage(format!("{flag} `{text}`: expected KEY=VALUE"))),
    }
}

fn single_request(
    args: &SimulateArgs,
    action: &str,
    resource: &str,
) -> Result<RequestSpec, InputError> {
    let mut request = Request::new(action, resource);
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for c in &args.context {
        let (k, v) = split_kv("--context", c)?;
        match grouped
            .iter_mut()
            .find(|(gk, _)| gk.eq_ignore_ascii_case(k))
        {
            Some((_, vals)) => vals.push(v.to_string()),
            None => grouped.push((k.to_string(), vec![v.to_string()])),
        }
    }
    for (k, mut vals) in grouped {
        if vals.len() == 1 {
            request.context.insert(&k, vals.remove(0));
        } else {
            request.context.insert_multi(&k, vals);
        }
    }
    let mut tags = Vec::new();
    for t in &args.tag {
        tags.push(split_kv("--tag", t)?);
    }
    request.context.set_resource_tags(tags);
    Ok(RequestSpec {
        request,
        principal: None,
    })
}

/// Runs `simulate`; returns the exit code.
pub fn run(args: &SimulateArgs, out: &mut impl Write) -> Result<u8, InputError> {
    let engine = load_engine(args)?;
    let (specs, single) = request_specs(args)?;
    // Callers are resolved up front, so that a bad principal fails before any output.
    let prepared = resolve_callers(args, &engine, specs)?;
    let format = args
        .format
        .unwrap_or(if single && std::io::stdout().is_terminal() {
            Format::Text
        } else {
            Format::Json
        });
    let w = |e: std::io::Error| InputError::Read {
        path: "<stdout>".to_string(),
        source: e,
    };
    for (request, caller) in prepared {
        let (request, principal, report) = decide(&engine, request, caller.as_ref());
        match format {
            Format::Json => {
                let line = Line {
                    action: &request.action,
                    resource: &request.resource,
                    principal,
                    report,
                };
                let text = serde_json::to_string(&line).map_err(InputError::Json)?;
                writeln!(out, "{text}").map_err(w)?;
            }
            Format::Text => write_text(out, &request, principal.as_ref(), &report).map_err(w)?,
        }
    }
    Ok(0)
}

/// The policy or intent requests are decided against.
fn load_engine(args: &SimulateArgs) -> Result<Engine, InputError> {
    match (&args.source.policy, &args.source.iam_policy) {
        (Some(p), _) => {
            let parsed = input::load_intent(p, false)?;
            report_warnings(&parsed.warnings);
            Ok(Engine::Intent(parsed.value))
        }
        (None, Some(p)) => {
            let parsed = input::load_policy(p, false)?;
            report_warnings(&parsed.warnings);
            Ok(Engine::Policy(parsed.value))
        }
        (None, None) => Err(usage("give --iam-policy POLICY or --policy INTENT")),
    }
}

/// The requests (with their line numbers; 0 for a single request from flags), and whether it
/// is a single request.
fn request_specs(args: &SimulateArgs) -> Result<(Vec<(usize, RequestSpec)>, bool), InputError> {
    let (specs, single) = match (&args.requests, &args.action, &args.resource) {
        (Some(path), _, _) => (read_requests(path)?, false),
        (None, Some(a), Some(r)) => (vec![(0, single_request(args, a, r)?)], true),
        _ => {
            return Err(usage(
                "give --requests FILE (or - for stdin), or --action and --resource",
            ))
        }
    };
    if !single && (!args.context.is_empty() || !args.tag.is_empty()) {
        return Err(usage(
            "--context and --tag apply to a single request; put context in the request lines",
        ));
    }
    Ok((specs, single))
}

/// Each request with its caller (intents need one), its context filled from the caller; every
/// bad or missing principal is reported at once.
fn resolve_callers(
    args: &SimulateArgs,
    engine: &Engine,
    specs: Vec<(usize, RequestSpec)>,
) -> Result<Vec<(Request, Option<Caller>)>, InputError> {
    let mut prepared = Vec::with_capacity(specs.len());
    let mut problems = Vec::new();
    for (line_no, spec) in specs {
        let RequestSpec {
            mut request,
            principal,
        } = spec;
        let caller = match engine {
            Engine::Policy(_) => None,
            Engine::Intent(_) => {
                let arn = principal.or_else(|| args.principal.clone());
                match arn.as_deref().map(Caller::from_arn) {
                    Some(Ok(c)) => Some(c),
                    Some(Err(e)) => {
                        problems.push(problem(
                            args,
                            line_no,
                            Code::InvalidPrincipal,
                            e.to_string(),
                        ));
                        None
                    }
                    None => {
                        problems.push(problem(
                            args,
                            line_no,
                            Code::MissingPrincipal,
                            "simulating through an intent needs a caller: give --principal ARN or a `principal` in the request line".to_string(),
                        ));
                        None
                    }
                }
            }
        };
        if let Some(c) = &caller {
            c.fill_context(&mut request.context);
        }
        prepared.push((request, caller));
    }
    if !problems.is_empty() {
        return Err(InputError::Invalid(problems));
    }
    Ok(prepared)
}

/// Decides one request: the policies that apply (the intent's for the caller), the report,
/// and how the intent applied to the caller.
fn decide(
    engine: &Engine,
    mut request: Request,
    caller: Option<&Caller>,
) -> (Request, Option<PrincipalInfo>, DecisionReport) {
    let (policies, principal): (Vec<&NamedPolicy>, Option<PrincipalInfo>) = match (engine, caller) {
        (Engine::Policy(p), _) => (vec![p], None),
        (Engine::Intent(intent), Some(c)) => {
            let res = intent.resolve(c);
            res.fill_context(&mut request.context);
            let info = PrincipalInfo {
                arn: c.arn.clone().unwrap_or_default(),
                entries: res.entries.iter().map(|e| e.name.clone()).collect(),
                unlisted: res.is_unlisted(),
                unlisted_policy: res.is_unlisted().then_some(intent.unlisted),
            };
            (res.policies, Some(info))
        }
        (Engine::Intent(_), None) => (Vec::new(), None),
    };
    let decision = evaluate(&policies, &request);
    let mut report = decision.report(&policies, &request);
    if let Some(info) = principal.as_ref().filter(|i| i.unlisted) {
        report.explanation = match info.unlisted_policy {
            Some(Unlisted::Ignore) => format!(
                "{}; the caller matches no intent entry and the intent ignores unlisted callers",
                report.explanation
            ),
            _ => format!(
                "{}; the caller matches no intent entry, so everything it does is outside intent",
                report.explanation
            ),
        };
    }
    (request, principal, report)
}

/// One result for people: the verdict, the caller, the explanation and the deciding
/// statements.
fn write_text(
    out: &mut impl Write,
    request: &Request,
    principal: Option<&PrincipalInfo>,
    report: &DecisionReport,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{}  {} on {}",
        output::verdict_label(report.decision),
        request.action,
        request.resource
    )?;
    if let Some(p) = principal {
        let entries = if p.entries.is_empty() {
            "no intent entry".to_string()
        } else {
            p.entries.join(", ")
        };
        writeln!(out, "  caller: {} ({entries})", p.arn)?;
    }
    writeln!(out, "  {}", report.explanation)?;
    if !report.missing_keys.is_empty() {
        writeln!(
            out,
            "  absent from the request: {}",
            report.missing_keys.join(", ")
        )?;
    }
    for s in &report.statements {
        let sid = s
            .sid
            .as_deref()
            .map(|s| format!(" (Sid {s})"))
            .unwrap_or_default();
        writeln!(
            out,
            "  decided by: {} statement {}{sid}",
            s.policy,
            s.index + 1
        )?;
    }
    Ok(())
}

fn problem(args: &SimulateArgs, line_no: usize, code: Code, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code,
        file: args.requests.as_ref().map(|r| {
            if r == "-" {
                "<stdin>".to_string()
            } else {
                r.clone()
            }
        }),
        path: "$.principal".to_string(),
        location: (line_no > 0).then_some(tagwatch_core::json::LineCol {
            line: line_no,
            column: 1,
        }),
        span: None,
        message,
        help: None,
    }
}

fn read_requests(path: &str) -> Result<Vec<(usize, RequestSpec)>, InputError> {
    let text = input::read_text(path)?;
    let shown = if path == "-" { "<stdin>" } else { path };
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_request_line(line, Some(shown), i + 1) {
            Ok(spec) => specs.push((i + 1, spec)),
            Err(mut diags) => errors.append(&mut diags),
        }
    }
    if !errors.is_empty() {
        return Err(InputError::Invalid(errors));
    }
    if specs.is_empty() {
        return Err(InputError::Usage(format!(
            "`{shown}` holds no request lines"
        )));
    }
    Ok(specs)
}

fn report_warnings(warnings: &[Diagnostic]) {
    if warnings.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    for d in warnings {
        let _ = writeln!(err, "{d}");
    }
}
