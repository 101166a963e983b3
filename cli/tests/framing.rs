//! `tagwatch replay` on inputs that lost events before (issue 11 §2, found by a black-box fuzz
//! campaign): JSON escapes the prefilter could not see, long first lines, a bad first line, a
//! byte order mark, and lines with no end. Each test fails without its fix.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use proptest::prelude::*;
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `tagwatch replay` with the example intent and inventory on `input` (stdin).
fn replay_stdin(extra: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagwatch"))
        .args([
            "replay",
            "--policy",
            "examples/intent.json",
            "--inventory",
            "examples/inventory.json",
        ])
        .args(extra)
        .arg("-")
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The process may stop reading early (a limit); a broken pipe is then expected.
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn findings(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("events").join(name)).unwrap())
        .unwrap()
}

/// alice's SendCommand on a production server: one violation (and one compliant resource).
fn violating() -> Value {
    fixture("cloudtrail-sendcommand-instanceids.json")
}

/// A string as JSON with every character `\u`-escaped (surrogate pairs beyond the BMP).
fn escaped_string(s: &str) -> String {
    let mut out = String::from("\"");
    for unit in s.encode_utf16() {
        out.push_str(&format!("\\u{unit:04x}"));
    }
    out.push('"');
    out
}

/// Compact JSON where the strings `escape` picks (keys and values, in document order) are
/// written with `\u` escapes: the same JSON value.
fn write_escaped(v: &Value, escape: &mut dyn FnMut() -> bool, out: &mut String) {
    let string = |s: &str, escape: &mut dyn FnMut() -> bool| {
        if escape() {
            escaped_string(s)
        } else {
            serde_json::to_string(s).unwrap()
        }
    };
    match v {
        Value::String(s) => out.push_str(&string(s, escape)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_escaped(item, escape, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&string(k, escape));
                out.push(':');
                write_escaped(item, escape, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn all_escaped(v: &Value) -> String {
    let mut out = String::new();
    write_escaped(v, &mut || true, &mut out);
    out
}

#[test]
fn escaped_event_sources_are_not_skipped() {
    // `"eventSource": "\u0073sm.amazonaws.com"`, `"source": "aws.\u0073sm"`: the same event.
    let mut e = violating();
    let text = e.to_string();
    let escaped = text
        .replace("\"ssm.amazonaws.com\"", "\"\\u0073sm.amazonaws.com\"")
        .replace("\"aws.ssm\"", "\"aws.\\u0073sm\"");
    assert_ne!(text, escaped);
    let o = replay_stdin(&["--strict", "--fail-on", "violation"], escaped.as_bytes());
    assert_eq!(findings(&o).len(), 1, "{}", stderr(&o));
    assert_eq!(
        o.status.code(),
        Some(1),
        "--fail-on violation: {}",
        stderr(&o)
    );
    // The raw record inside a log file, escaped the same way.
    let record = e["detail"].take();
    let log = json!({"Records": [record]}).to_string();
    let log = log.replace("\"ssm.amazonaws.com\"", "\"\\u0073sm.amazonaws.com\"");
    let o = replay_stdin(&[], log.as_bytes());
    assert_eq!(findings(&o).len(), 1, "{}", stderr(&o));
}

#[test]
fn an_escaped_records_key_is_still_a_log_file() {
    let record = violating()["detail"].clone();
    let log = format!("{{\"\\u0052ecords\":[{record}]}}");
    let o = replay_stdin(&["--strict"], log.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(findings(&o).len(), 1, "{}", stderr(&o));
}

#[test]
fn a_first_line_longer_than_any_buffer_frames_a_multi_line_log_file() {
    // A valid two-line CloudTrail log file whose first line is over 256 KiB.
    let mut long = violating()["detail"].clone();
    long["requestParameters"]["comment"] = json!("x".repeat(300_000));
    let other = fixture("cloudtrail-sendcommand-tag-targets.json")["detail"].clone();
    let text = format!("{{\"Records\":[{long},\n{other}]}}\n");
    assert!(text.find('\n').unwrap() >= 262_144);
    let o = replay_stdin(&["--strict"], text.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 events read"), "{}", stderr(&o));
    // alice's violation; bob's patch run names no instance and its document is within intent.
    assert_eq!(findings(&o).len(), 1, "{}", stderr(&o));
}

#[test]
fn leading_whitespace_does_not_split_a_document_into_lines() {
    let pretty = serde_json::to_string_pretty(&violating()).unwrap();
    for lead in [" ".repeat(300_000), "\n\n  \n".to_string()] {
        let text = format!("{lead}{pretty}\n");
        let o = replay_stdin(&["--strict"], text.as_bytes());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stderr(&o).contains("1 events read"), "{}", stderr(&o));
        assert_eq!(findings(&o).len(), 1);
    }
}

/// 100 JSON lines: alice's violating SendCommand 99 times (distinct event ids) after `first`.
fn json_lines_after(first: &str) -> String {
    let mut lines = vec![first.to_string()];
    for i in 0..99 {
        let mut e = violating();
        e["id"] = json!(format!("line-{i}"));
        e["detail"]["eventID"] = json!(format!("line-{i}"));
        e["detail"]["responseElements"]["command"]["commandId"] = json!(format!("cmd-{i}"));
        lines.push(e.to_string());
    }
    lines.join("\n") + "\n"
}

#[test]
fn a_bad_first_line_loses_only_itself() {
    let line = violating().to_string();
    let truncated = &line[..line.len() / 2];
    let o = replay_stdin(&[], json_lines_after(truncated).as_bytes());
    let err = stderr(&o);
    assert!(err.contains("<stdin>:1: malformed"), "{err}");
    assert!(err.contains("100 events read"), "{err}");
    assert!(err.contains("1 malformed"), "{err}");
    assert_eq!(findings(&o).len(), 99, "{err}");
    // A first object split over two lines: both lines are reported, the rest processed.
    let pretty_two = "{\"version\": \"0\",\n\"id\": \"x\"}";
    let o = replay_stdin(&[], json_lines_after(pretty_two).as_bytes());
    let err = stderr(&o);
    assert!(err.contains("<stdin>:1: malformed"), "{err}");
    assert!(err.contains("<stdin>:2: malformed"), "{err}");
    assert_eq!(findings(&o).len(), 99, "{err}");
}

#[test]
fn a_corrupt_pretty_printed_document_is_one_malformed_input() {
    let pretty = serde_json::to_string_pretty(&violating()).unwrap();
    let cut = &pretty[..pretty.len() - 40];
    let o = replay_stdin(&[], cut.as_bytes());
    let err = stderr(&o);
    assert!(err.contains("1 malformed"), "{err}");
    assert!(err.contains("<stdin>: malformed: invalid JSON"), "{err}");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    for text in [
        format!("\u{feff}{}\n", violating()),
        format!(
            "\u{feff}{}",
            serde_json::to_string_pretty(&violating()).unwrap()
        ),
    ] {
        let o = replay_stdin(&["--strict"], text.as_bytes());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(findings(&o).len(), 1, "{}", stderr(&o));
    }
}

#[test]
fn a_line_over_the_record_limit_is_malformed_and_the_rest_goes_on() {
    let line = violating().to_string();
    let mut e = violating();
    e["id"] = json!("after");
    e["detail"]["eventID"] = json!("after");
    e["detail"]["responseElements"]["command"]["commandId"] = json!("cmd-after");
    // 5 MB of spaces on line 2, with a 1 MB limit: reported with its position, never held.
    let text = format!("{line}\n{}\n{e}\n", " ".repeat(5_000_000));
    let o = replay_stdin(&["--max-record-bytes", "1000000"], text.as_bytes());
    let err = stderr(&o);
    assert!(
        err.contains("<stdin>:2: malformed: longer than the record limit (1000000 bytes)"),
        "{err}"
    );
    assert_eq!(findings(&o).len(), 2, "{err}");
    // No end at all (the last line of the input): reported too.
    let text = format!("{line}\n{}", "0".repeat(3_000_000));
    let o = replay_stdin(&["--max-record-bytes", "1000000"], text.as_bytes());
    assert!(stderr(&o).contains("<stdin>:2: malformed: longer than the record limit"));
    assert_eq!(findings(&o).len(), 1);
    // A multi-line document over the limit.
    let pretty = serde_json::to_string_pretty(&violating()).unwrap();
    let o = replay_stdin(&["--max-record-bytes", "1000"], pretty.as_bytes());
    assert!(
        stderr(&o).contains("<stdin>: malformed: longer than the record limit (1000 bytes)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_gzip_bomb_is_bounded_by_the_record_limit() {
    // 200 MB of spaces in about 200 KB of gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1 << 20];
    for _ in 0..200 {
        gz.write_all(&block).unwrap();
    }
    gz.write_all(b"\n").unwrap();
    gz.write_all(violating().to_string().as_bytes()).unwrap();
    let data = gz.finish().unwrap();
    let o = replay_stdin(&["--max-record-bytes", "1048576"], &data);
    assert!(
        stderr(&o).contains("<stdin>:1: malformed: longer than the record limit"),
        "{}",
        stderr(&o)
    );
    assert_eq!(findings(&o).len(), 1, "the line after the bomb is read");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Escaping any strings of a relevant event (keys or values) never changes its findings.
    #[test]
    fn escaping_strings_never_changes_the_findings(
        which in 0usize..4,
        mask in proptest::collection::vec(any::<bool>(), 1..64),
    ) {
        let name = [
            "cloudtrail-sendcommand-instanceids.json",
            "cloudtrail-sendcommand-vpc-endpoint.json",
            "cloudtrail-startsession-denied.json",
            "cloudtrail-sendcommand-access-denied.json",
        ][which];
        let e = fixture(name);
        let mut i = 0usize;
        let mut text = String::new();
        write_escaped(&e, &mut || { i += 1; mask[i % mask.len()] }, &mut text);
        let plain = findings(&replay_stdin(&[], e.to_string().as_bytes()));
        let escaped = findings(&replay_stdin(&[], text.as_bytes()));
        prop_assert!(!plain.is_empty());
        prop_assert_eq!(plain, escaped);
    }
}

#[test]
fn a_wholly_escaped_event_gives_the_same_findings() {
    for name in [
        "cloudtrail-sendcommand-instanceids.json",
        "ssm-association-run.json",
    ] {
        let e = fixture(name);
        let plain = findings(&replay_stdin(&[], e.to_string().as_bytes()));
        let escaped = findings(&replay_stdin(&[], all_escaped(&e).as_bytes()));
        assert_eq!(plain, escaped, "{name}");
    }
}
