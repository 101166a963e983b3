//! `tagwatch replay --report FILE`: one self-contained HTML page of a replay's findings.
//!
//! Everything is inline (styles, script, the findings as JSON): the page loads no network
//! resource, so it opens from a file, an attachment or an air-gapped laptop. It shows the
//! counts by kind, a timeline of findings per principal, the top principals, instances and
//! documents, and the findings table with filters by kind, principal and time. The filters
//! can be set from the address's fragment (`report.html#kind=violation&principal=…&from=…&to=…`),
//! so a filtered view can be shared as a link.

use serde::Serialize;
use tagwatch_core::watch::finding::{Finding, FindingKind};

/// What a report says about the run besides its findings.
#[derive(Debug, Serialize)]
pub struct ReportMeta {
    pub generated_by: String,
    pub inputs: Vec<String>,
    pub events_read: u64,
}

/// One finding as the page needs it (the full finding stays in the JSON lines output).
#[derive(Serialize)]
struct Row<'a> {
    kind: &'a str,
    severity: &'a str,
    time: &'a str,
    ms: i64,
    principal: String,
    action: &'a str,
    resource: &'a str,
    document: &'a str,
    instance_name: &'a str,
    summary: &'a str,
    reason: &'a str,
    console: &'a str,
    suppressed: bool,
    count: u64,
    finding_id: &'a str,
}

fn row(f: &Finding) -> Row<'_> {
    Row {
        kind: f.kind.as_str(),
        severity: match f.severity {
            tagwatch_core::watch::finding::FindingSeverity::High => "high",
            tagwatch_core::watch::finding::FindingSeverity::Medium => "medium",
            tagwatch_core::watch::finding::FindingSeverity::Low => "low",
        },
        time: &f.meta.event_time,
        ms: f.meta.event_epoch_ms,
        // Spikes name the role; calls name the session: the page groups by who acted.
        principal: f
            .session_issuer
            .clone()
            .or_else(|| f.principal.clone())
            .unwrap_or_else(|| "(unknown caller)".to_string()),
        action: f.action.as_deref().unwrap_or(""),
        resource: f.resource.as_deref().unwrap_or(""),
        document: f.document.as_deref().unwrap_or(""),
        instance_name: f.instance_name.as_deref().unwrap_or(""),
        summary: &f.summary,
        reason: &f.reason,
        console: f.links.console.as_deref().unwrap_or(""),
        suppressed: f.suppressed,
        count: f.count,
        finding_id: &f.finding_id,
    }
}

/// JSON placed inside a `<script>` element: `<`, `>` and `&` escaped so no value can close the
/// element or open a comment.
fn script_json(v: &impl Serialize) -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string(v)?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

/// The page for these findings.
pub fn render(findings: &[Finding], meta: &ReportMeta) -> Result<String, serde_json::Error> {
    let rows: Vec<Row<'_>> = findings.iter().map(row).collect();
    let kinds: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
    let data = script_json(&serde_json::json!({
        "meta": meta,
        "kinds": kinds,
        "findings": rows,
    }))?;
    Ok(PAGE.replace("/*DATA*/", &data))
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>tagwatch replay report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #fafbfc; }
h1 { font-size: 1.4em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.4em 0 .5em; }
.meta { color: #5a6275; margin-bottom: 1em; }
.cards { display: flex; gap: .8em; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: .6em 1em; min-width: 9em; }
.card b { display: block; font-size: 1.6em; }
.violation { color: #b42318; } .access_denied_spike { color: #b54708; } .unevaluated { color: #5d49b0; }
.unlogged_command { color: #026aa2; } .access_denied { color: #5a6275; }
.tops { display: flex; gap: 1.5em; flex-wrap: wrap; }
table { border-collapse: collapse; background: #fff; }
th, td { border-bottom: 1px solid #e5e8ee; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f0f2f6; position: sticky; top: 0; }
#findings td.summary { max-width: 48em; }
.filters { display: flex; gap: 1em; flex-wrap: wrap; align-items: end; margin-bottom: .6em; }
.filters label { display: flex; flex-direction: column; font-size: .85em; color: #5a6275; }
svg text { font-size: 11px; fill: #1d2330; }
.suppressed { opacity: .55; }
</style>
</head>
<body>
<h1>tagwatch replay report</h1>
<div class="meta" id="meta"></div>
<div class="cards" id="cards"></div>
<h2>Timeline of findings per principal</h2>
<div id="timeline"></div>
<h2>Top principals, instances and documents</h2>
<div class="tops" id="tops"></div>
<h2>Findings <span id="shown">(<span id="shown-count">0</span> of <span id="total-count">0</span> shown)</span></h2>
<div class="filters">
<label>kind <select id="f-kind"><option value="">all kinds</option></select></label>
<label>principal <select id="f-principal"><option value="">all principals</option></select></label>
<label>from (UTC) <input id="f-from" type="datetime-local" step="1"></label>
<label>to (UTC) <input id="f-to" type="datetime-local" step="1"></label>
</div>
<table id="findings"><thead><tr><th>time</th><th>kind</th><th>severity</th><th>principal</th><th>summary</th><th>count</th><th>run</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="data">/*DATA*/</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const rows = data.findings;
const $ = (id) => document.getElementById(id);
const el = (tag, attrs, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const short = (arn) => {
  if (!arn) return "";
  const m = arn.match(/assumed-role\/([^/]+)\/(.+)$/);
  if (m) return m[2] + " (" + m[1] + ")";
  return arn.split("/").pop();
};
$("meta").textContent = rows.length + " findings from " + data.meta.events_read + " events in " +
  data.meta.inputs.join(", ") + " (" + data.meta.generated_by + ")";
for (const kind of data.kinds) {
  const n = rows.filter((r) => r.kind === kind).length;
  const card = el("div", {"class": "card", "data-kind": kind});
  card.appendChild(el("b", {"class": kind, "id": "count-" + kind}, String(n)));
  card.appendChild(document.createTextNode(kind.replace(/_/g, " ")));
  $("cards").appendChild(card);
  $("f-kind").appendChild(el("option", {value: kind}, kind));
}
const principals = [...new Set(rows.map((r) => r.principal))].sort();
for (const p of principals) $("f-principal").appendChild(el("option", {value: p}, short(p)));

function topTable(title, key, label, only) {
  const counts = new Map();
  for (const r of rows) if (r[key] && (!only || only(r[key]))) counts.set(r[key], (counts.get(r[key]) || 0) + 1);
  const t = el("table", {"class": "top"});
  const head = el("tr"); head.appendChild(el("th", {}, title)); head.appendChild(el("th", {}, "findings"));
  t.appendChild(head);
  for (const [k, n] of [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10)) {
    const tr = el("tr"); tr.appendChild(el("td", {title: k}, label(k))); tr.appendChild(el("td", {}, String(n)));
    t.appendChild(tr);
  }
  return t;
}
$("tops").appendChild(topTable("principal", "principal", short));
$("tops").appendChild(topTable("instance", "resource", (k) => {
  const r = rows.find((x) => x.resource === k && x.instance_name);
  return short(k) + (r ? " (" + r.instance_name + ")" : "");
}, (arn) => /:(instance|managed-instance)\//.test(arn)));
$("tops").appendChild(topTable("document", "document", short));

function timeline() {
  const ns = "http://www.w3.org/2000/svg";
  const times = rows.map((r) => r.ms);
  const lo = times.reduce((a, b) => Math.min(a, b), Infinity);
  const hi = times.reduce((a, b) => Math.max(a, b), -Infinity);
  const left = 220, width = 900, rowH = 22;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", String(left + width + 20));
  svg.setAttribute("height", String(principals.length * rowH + 30));
  principals.forEach((p, i) => {
    const y = 20 + i * rowH;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "0"); label.setAttribute("y", String(y + 4));
    label.textContent = short(p);
    svg.appendChild(label);
    for (const r of rows.filter((r) => r.principal === p)) {
      const x = left + (hi > lo ? (r.ms - lo) / (hi - lo) * width : width / 2);
      const dot = document.createElementNS(ns, "circle");
      dot.setAttribute("cx", String(x)); dot.setAttribute("cy", String(y)); dot.setAttribute("r", "5");
      dot.setAttribute("class", "dot " + r.kind);
      dot.setAttribute("fill", "currentColor");
      const tip = document.createElementNS(ns, "title");
      tip.textContent = r.time + " " + r.kind + ": " + r.summary;
      dot.appendChild(tip);
      svg.appendChild(dot);
    }
  });
  if (rows.length) {
    for (const [x, t] of [[left, lo], [left + width - 130, hi]]) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", String(x)); label.setAttribute("y", "10");
      label.textContent = new Date(t).toISOString().replace(".000Z", "Z");
      svg.appendChild(label);
    }
  }
  $("timeline").appendChild(svg);
}
timeline();

const body = $("findings").querySelector("tbody");
for (const r of [...rows].sort((a, b) => a.ms - b.ms)) {
  const tr = el("tr", {"class": r.suppressed ? "suppressed" : "", "data-kind": r.kind});
  tr.appendChild(el("td", {}, r.time));
  tr.appendChild(el("td", {"class": r.kind}, r.kind + (r.suppressed ? " (suppressed)" : "")));
  tr.appendChild(el("td", {}, r.severity));
  tr.appendChild(el("td", {title: r.principal}, short(r.principal)));
  tr.appendChild(el("td", {"class": "summary", title: r.reason}, r.summary || r.reason));
  tr.appendChild(el("td", {}, String(r.count)));
  const run = el("td");
  if (/^https:\/\/[a-z0-9.-]+\.(aws\.amazon\.com|amazonaws\.cn|amazonaws-us-gov\.com)\//.test(r.console)) {
    run.appendChild(el("a", {href: r.console, rel: "noreferrer noopener", target: "_blank"}, "console"));
  }
  tr.appendChild(run);
  tr.row = r;
  body.appendChild(tr);
}
$("total-count").textContent = String(rows.length);

const toMs = (v) => v ? Date.parse(v + (v.length === 16 ? ":00Z" : "Z")) : NaN;
function apply() {
  const kind = $("f-kind").value, principal = $("f-principal").value;
  const from = toMs($("f-from").value), to = toMs($("f-to").value);
  let shown = 0;
  for (const tr of body.children) {
    const r = tr.row;
    const ok = (!kind || r.kind === kind) && (!principal || r.principal === principal) &&
      (isNaN(from) || r.ms >= from) && (isNaN(to) || r.ms <= to);
    tr.hidden = !ok;
    if (ok) shown++;
  }
  $("shown-count").textContent = String(shown);
  const params = new URLSearchParams();
  if (kind) params.set("kind", kind);
  if (principal) params.set("principal", principal);
  if ($("f-from").value) params.set("from", $("f-from").value);
  if ($("f-to").value) params.set("to", $("f-to").value);
  const hash = params.toString();
  if (location.hash.slice(1) !== hash) history.replaceState(null, "", hash ? "#" + hash : location.pathname);
}
const initial = new URLSearchParams(location.hash.slice(1));
$("f-kind").value = initial.get("kind") || "";
$("f-principal").value = initial.get("principal") || "";
$("f-from").value = initial.get("from") || "";
$("f-to").value = initial.get("to") || "";
for (const id of ["f-kind", "f-principal", "f-from", "f-to"]) $(id).addEventListener("change", apply);
apply();
document.body.setAttribute("data-ready", "true");
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use tagwatch_core::watch::event::EventMeta;
    use tagwatch_core::watch::finding::FindingSeverity;

    /// The number of findings per kind (what the page's counters must show).
    fn counts(findings: &[Finding]) -> Vec<(&'static str, usize)> {
        FindingKind::ALL
            .iter()
            .map(|k| (k.as_str(), findings.iter().filter(|f| f.kind == *k).count()))
            .collect()
    }

    /// The data a page carries, read back (for tests and tools).
    fn data_of(page: &str) -> Option<Value> {
        let start = page.find(DATA_OPEN)? + DATA_OPEN.len();
        let end = start + page.get(start..)?.find("</script>")?;
        serde_json::from_str(page.get(start..end)?).ok()
    }

    const DATA_OPEN: &str = r#"<script type="application/json" id="data">"#;

    fn finding(kind: FindingKind, summary: &str) -> Finding {
        let mut f = Finding::new(
            kind,
            FindingSeverity::High,
            "f-1".into(),
            EventMeta {
                event_id: "e".into(),
                event_time: "2026-11-20T09:00:00Z".into(),
                event_epoch_ms: 1_795_165_200_000,
                account: "1".into(),
                region: "us-east-1".into(),
                partition: "aws".into(),
            },
            "r".into(),
        );
        f.summary = summary.into();
        f
    }

    #[test]
    fn the_page_is_self_contained_and_carries_every_finding() {
        let findings = vec![
            finding(FindingKind::Violation, "one"),
            finding(
                FindingKind::Violation,
                "two </script><script>alert(1)</script>",
            ),
            finding(FindingKind::Unevaluated, "three"),
        ];
        let page = render(
            &findings,
            &ReportMeta {
                generated_by: "tagwatch test".into(),
                inputs: vec!["events/".into()],
                events_read: 9,
            },
        )
        .unwrap();
        // No network resource: no external script, style, image or font.
        for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
            assert!(!page.contains(external), "{external}");
        }
        assert_eq!(
            page.matches("<script").count(),
            2,
            "a summary cannot open a script"
        );
        let data = data_of(&page).unwrap();
        assert_eq!(data["findings"].as_array().unwrap().len(), 3);
        assert_eq!(
            data["findings"][1]["summary"],
            "two </script><script>alert(1)</script>"
        );
        assert_eq!(
            counts(&findings),
            [
                ("violation", 2),
                ("access_denied", 0),
                ("access_denied_spike", 0),
                ("unevaluated", 1),
                ("unlogged_command", 0),
                ("silent_source", 0)
            ]
        );
    }
}
