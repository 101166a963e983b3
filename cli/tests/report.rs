//! `tagwatch replay --report`: the page, opened in headless Chromium (Debian's `chromium`,
//! installed by `cargo xtask test`'s set-up; `TAGWATCH_CHROMIUM` names another binary). The
//! page loads with no console message (no script error, no blocked network load), its counters
//! equal the findings replay wrote, a filter in the address narrows the table, and a screenshot
//! is written to `target/report-screenshot.png` for a person to look at.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn chromium() -> String {
    if let Ok(c) = std::env::var("TAGWATCH_CHROMIUM") {
        return c;
    }
    for c in ["chromium", "chromium-browser"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c.to_string();
        }
    }
    panic!(
        "headless Chromium is needed for this test: `cargo xtask test` installs Debian's `chromium`; \
         or set TAGWATCH_CHROMIUM to a Chromium binary"
    )
}

/// Chromium headless on `url`, with `extra` arguments; (stdout, stderr).
fn headless(url: &str, extra: &[&str]) -> (String, String) {
    let profile = tempdir("chromium-profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn tempdir(name: &str) -> PathBuf {
    let dir = root()
        .join("target")
        .join("report-test")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The text of the element with this id in a dumped DOM.
fn text_of(dom: &str, id: &str) -> String {
    let open = format!("id=\"{id}\"");
    let at = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap();
    rest[start..start + end].to_string()
}

#[test]
fn the_report_loads_cleanly_counts_right_and_filters() {
    let dir = tempdir("report");
    let page = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_tagwatch"))
        .current_dir(root())
        .args([
            "replay",
            "--policy",
            "examples/intent.json",
            "--inventory",
            "examples/inventory.json",
            "--report",
        ])
        .arg(&page)
        .arg("events/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_kind = |k: &str| findings.iter().filter(|f| f["kind"] == k).count();
    assert!(of_kind("violation") > 0 && of_kind("violation") < findings.len());

    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(external), "the page loads {external}");
    }

    let url = format!("file://{}", page.display());
    let (dom, log) = headless(&url, &["--dump-dom"]);
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        dom.contains("data-ready=\"true\""),
        "the script ran to its end"
    );
    assert_eq!(text_of(&dom, "total-count"), findings.len().to_string());
    assert_eq!(text_of(&dom, "shown-count"), findings.len().to_string());
    for kind in [
        "violation",
        "access_denied",
        "access_denied_spike",
        "unevaluated",
        "unlogged_command",
    ] {
        assert_eq!(
            text_of(&dom, &format!("count-{kind}")),
            of_kind(kind).to_string(),
            "{kind}"
        );
    }

    // A filter (set from the address, as a shared link would) narrows the table.
    let (filtered, log) = headless(&format!("{url}#kind=violation"), &["--dump-dom"]);
    assert!(!log.contains("CONSOLE"), "{log}");
    assert_eq!(
        text_of(&filtered, "shown-count"),
        of_kind("violation").to_string()
    );
    assert_eq!(
        filtered.matches("<tr class=\"\" data-kind=\"").count()
            + filtered
                .matches("<tr class=\"suppressed\" data-kind=\"")
                .count(),
        findings.len(),
        "every row is still there"
    );
    assert_eq!(
        filtered.matches(" hidden=\"\"").count(),
        findings.len() - of_kind("violation"),
        "the others are hidden"
    );

    let shot = root().join("target").join("report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2000",
            "--hide-scrollbars",
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
