//! CloudTrail archives where they live: the S3 layout CloudTrail writes log files in, and the
//! selection of an archive's part by account, region and day.
//!
//! CloudTrail delivers a trail's log files to
//! `<prefix>/AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/<file>.json.gz`, and an
//! organisation trail's to `<prefix>/AWSLogs/<org-id>/<account>/CloudTrail/...` ("Finding your
//! CloudTrail log files", CloudTrail User Guide). Digest files (`CloudTrail-Digest/`) and
//! Insights events (`CloudTrail-Insight/`) sit beside `CloudTrail/` and hold no API calls. The
//! day folder is the UTC day of delivery: a call in the last minutes of a day can sit in the
//! next day's folder, so a selection by day is a selection of folders, not of event times.
//!
//! [`Cursor`] walks a listing one folder level at a time (an S3 listing with delimiter `/`),
//! pruning folders the [`Selection`] excludes, down to one [`DayPrefix`] per account, region
//! and day: the unit a replay reads in key order and a backfill hands to one worker (a caller's
//! calls of a day in one region stay together, in order, for the spike windows). Pure: the
//! listing is the caller's.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A calendar day (UTC), as CloudTrail's day folders and `--from`/`--to` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Day {
    /// A valid calendar day, or `None`.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Day> {
        let month_ok = time::Month::try_from(month).ok()?;
        time::Date::from_calendar_date(i32::from(year), month_ok, day).ok()?;
        Some(Day { year, month, day })
    }

    /// `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Day, String> {
        let bad = || format!("`{text}` is not a day: expected YYYY-MM-DD, as 2026-12-07");
        let mut parts = text.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let num = |s: &str| -> Option<u16> {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse().ok())
                .flatten()
        };
        let (Some(y), Some(m), Some(d)) = (num(y), num(m), num(d)) else {
            return Err(bad());
        };
        let (Ok(m), Ok(d)) = (u8::try_from(m), u8::try_from(d)) else {
            return Err(bad());
        };
        Day::new(y, m, d).ok_or_else(|| format!("`{text}` is not a calendar day"))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Day::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which part of an archive to read: days from `from` to `to` (both included, either open),
/// and only the listed accounts and regions (empty: all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Day>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Day>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub accounts: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub regions: BTreeSet<String>,
}

impl Selection {
    /// A selection from the command line's values, each checked: account ids are 12 digits,
    /// regions look like regions, `from` is not after `to`.
    pub fn new(
        from: Option<&str>,
        to: Option<&str>,
        accounts: &[String],
        regions: &[String],
    ) -> Result<Selection, String> {
        let from = from.map(Day::parse).transpose()?;
        let to = to.map(Day::parse).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(format!("--from {f} is after --to {t}"));
            }
        }
        let mut sel = Selection {
            from,
            to,
            ..Selection::default()
        };
        for a in accounts.iter().flat_map(|a| a.split(',')).map(str::trim) {
            if !is_account(a) {
                return Err(format!("`{a}` is not an AWS account id (12 digits)"));
            }
            sel.accounts.insert(a.to_string());
        }
        for r in regions.iter().flat_map(|r| r.split(',')).map(str::trim) {
            if !is_region(r) {
                return Err(format!("`{r}` is not an AWS region name (as us-east-1)"));
            }
            sel.regions.insert(r.to_string());
        }
        Ok(sel)
    }

    /// Whether it selects everything.
    pub fn is_all(&self) -> bool {
        self.from.is_none()
            && self.to.is_none()
            && self.accounts.is_empty()
            && self.regions.is_empty()
    }

    fn account(&self, account: &str) -> bool {
        self.accounts.is_empty() || self.accounts.contains(account)
    }

    fn region(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.contains(region)
    }

    fn year(&self, y: u16) -> bool {
        self.from.is_none_or(|f| y >= f.year) && self.to.is_none_or(|t| y <= t.year)
    }

    fn month(&self, y: u16, m: u8) -> bool {
        self.from.is_none_or(|f| (y, m) >= (f.year, f.month))
            && self.to.is_none_or(|t| (y, m) <= (t.year, t.month))
    }

    fn day(&self, d: Day) -> bool {
        self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
    }

    /// Whether a log file at this place is selected.
    pub fn admits(&self, key: &TrailKey) -> bool {
        self.account(&key.account) && self.region(&key.region) && self.day(key.day)
    }
}

/// 12 ASCII digits.
pub fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS Organizations id: `o-` and 10 to 32 lowercase letters or digits.
fn is_org(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// A region name: lowercase letters, digits and dashes, starting with a letter, with a dash
/// (us-east-1, eu-central-2, us-gov-west-1, cn-north-1).
fn is_region(s: &str) -> bool {
    (4..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.contains('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Where a CloudTrail log file sits in the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailKey {
    pub org: Option<String>,
    pub account: String,
    pub region: String,
    pub day: Day,
}

/// What a key (or a local path, with `/` separators) is in the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClass {
    /// A log file of API calls (`.../CloudTrail/<region>/<yyyy>/<mm>/<dd>/<file>`).
    Events(TrailKey),
    /// A file CloudTrail writes beside the calls: digests, Insights events
    /// (`CloudTrail-Digest/`, `CloudTrail-Insight/`): no calls to replay.
    NotEvents,
    /// Not in the layout.
    Outside,
}

/// Places a key in the layout: the last `AWSLogs` folder of the key starts it.
pub fn classify(key: &str) -> KeyClass {
    let segments: Vec<&str> = key.split('/').collect();
    let Some(at) = segments.iter().rposition(|s| *s == "AWSLogs") else {
        return KeyClass::Outside;
    };
    let rest = segments.get(at + 1..).unwrap_or_default();
    let (org, rest) = match rest.split_first() {
        Some((o, tail)) if is_org(o) => (Some((*o).to_string()), tail),
        _ => (None, rest),
    };
    let [account, service, tail @ ..] = rest else {
        return KeyClass::Outside;
    };
    if !is_account(account) {
        return KeyClass::Outside;
    }
    match *service {
        "CloudTrail" => {}
        s if s.starts_with("CloudTrail-") => return KeyClass::NotEvents,
        _ => return KeyClass::Outside,
    }
    let [region, y, m, d, file] = tail else {
        return KeyClass::Outside;
    };
    let day = match (digits(y, 4), digits(m, 2), digits(d, 2)) {
        (Some(y), Some(m), Some(d)) => Day::new(y, m, d),
        _ => None,
    };
    match day {
        Some(day) if is_region(region) && !file.is_empty() => KeyClass::Events(TrailKey {
            org,
            account: (*account).to_string(),
            region: (*region).to_string(),
            day,
        }),
        _ => KeyClass::Outside,
    }
}

/// Whether a key (or a local path with `/` separators) found in a listing is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Read,
    /// A digest or Insights file: no calls in it.
    NotEvents,
    /// A log file the selection excludes, or a file outside the layout when a selection is
    /// given (a selection is by the layout's folders).
    NotSelected,
    /// Not an input by its name (replay reads `.json`, `.jsonl` and `.gz` files; hidden files
    /// and folder markers are not inputs).
    NotInput,
}

/// Whether replay reads the file at `key`, found in a listing, under `selection`.
pub fn choose(key: &str, selection: &Selection) -> Choice {
    let name = key.rsplit('/').next().unwrap_or(key);
    let input = [".json", ".jsonl", ".gz"].iter().any(|x| name.ends_with(x));
    if !input || name.starts_with('.') {
        return Choice::NotInput;
    }
    match classify(key) {
        KeyClass::Events(k) if selection.admits(&k) => Choice::Read,
        KeyClass::Events(_) => Choice::NotSelected,
        KeyClass::NotEvents => Choice::NotEvents,
        KeyClass::Outside if selection.is_all() => Choice::Read,
        KeyClass::Outside => Choice::NotSelected,
    }
}

/// `s3://bucket/prefix` parsed: `None` when the text is not an `s3://` URL.
pub fn parse_s3_url(text: &str) -> Option<Result<(String, String), String>> {
    let rest = text.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    // Bucket names: 3 to 63 lowercase letters, digits, dots and dashes.
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    Some(if valid {
        Ok((bucket.to_string(), prefix.to_string()))
    } else {
        Err(format!(
            "`{text}`: `{bucket}` is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and dashes)"
        ))
    })
}

/// One account's log files of one region and day: a folder to list and read in key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPrefix {
    /// The folder, ending in `/`.
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub account: String,
    pub region: String,
    pub date: Day,
}

impl DayPrefix {
    /// Whether this is a day folder of the layout, as a walk finds it (its prefix names its
    /// account, region and date): a day handed in from outside (a backfill's batch) is checked
    /// before its fields make result keys.
    pub fn check(&self) -> Result<(), String> {
        match start(&self.prefix, &Selection::default()) {
            Start::Day(found) if found == *self => Ok(()),
            _ => Err(format!(
                "`{}` is not the CloudTrail day folder of account {}, region {}, {}",
                self.prefix, self.account, self.region, self.date
            )),
        }
    }
}

/// What the next folder level below a [`Cursor`]'s prefix holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    /// Above `AWSLogs/` (a trail's own key prefix, or the bucket's root).
    Top,
    /// Below `AWSLogs/`: organisation ids or account ids.
    Logs,
    /// Below `AWSLogs/<org-id>/`: account ids.
    Org { org: String },
    /// Below `<account>/`: `CloudTrail/` (and the digest and Insights folders).
    Account {
        org: Option<String>,
        account: String,
    },
    /// Below `CloudTrail/`: regions.
    Service {
        org: Option<String>,
        account: String,
    },
    /// Below `<region>/`: years.
    Region { place: Place },
    /// Below `<yyyy>/`: months.
    Year { place: Place, year: u16 },
    /// Below `<mm>/`: days.
    Month { place: Place, year: u16, month: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    org: Option<String>,
    account: String,
    region: String,
}

/// A listed folder of the layout: its prefix and what its sub-folders are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    prefix: String,
    level: Level,
}

/// Where a sub-folder leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A folder to list next.
    Descend(Cursor),
    /// A day's folder: its files are read.
    Day(DayPrefix),
    /// Not in the layout, or not selected.
    Skip,
}

/// Where a walk from a user's prefix starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A folder of the layout (or above it) to list with a delimiter.
    Walk(Cursor),
    /// The prefix is one day's folder.
    Day(DayPrefix),
    /// The prefix is in the layout but the selection excludes it: nothing to read.
    Excluded,
    /// The prefix is inside `AWSLogs/` but not a folder of log files of calls (a digest
    /// folder, say): its objects are listed as they are.
    Outside,
}

impl Cursor {
    /// The folder's prefix (ending in `/`, or empty for a bucket's root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this folder is above `AWSLogs/`: if none of its sub-folders is `AWSLogs/`, the
    /// prefix is not a CloudTrail archive's and its objects are read as they are.
    pub fn is_top(&self) -> bool {
        self.level == Level::Top
    }

    /// Where the sub-folder `child` (a common prefix of this folder's listing: this prefix, a
    /// name and `/`) leads under `selection`.
    pub fn step(&self, child: &str, selection: &Selection) -> Step {
        let Some(name) = child
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_suffix('/'))
            .filter(|n| !n.is_empty() && !n.contains('/'))
        else {
            return Step::Skip;
        };
        let descend = |level| {
            Step::Descend(Cursor {
                prefix: child.to_string(),
                level,
            })
        };
        match &self.level {
            Level::Top if name == "AWSLogs" => descend(Level::Logs),
            Level::Top => Step::Skip,
            Level::Logs if is_org(name) => descend(Level::Org {
                org: name.to_string(),
            }),
            Level::Logs if is_account(name) && selection.account(name) => descend(Level::Account {
                org: None,
                account: name.to_string(),
            }),
            Level::Org { org } if is_account(name) && selection.account(name) => {
                descend(Level::Account {
                    org: Some(org.clone()),
                    account: name.to_string(),
                })
            }
            Level::Account { org, account } if name == "CloudTrail" => descend(Level::Service {
                org: org.clone(),
                account: account.clone(),
            }),
            Level::Service { org, account } if is_region(name) && selection.region(name) => {
                descend(Level::Region {
                    place: Place {
                        org: org.clone(),
                        account: account.clone(),
                        region: name.to_string(),
                    },
                })
            }
            Level::Region { place } => match digits::<u16>(name, 4) {
                Some(year) if selection.year(year) => descend(Level::Year {
                    place: place.clone(),
                    year,
                }),
                _ => Step::Skip,
            },
            Level::Year { place, year } => match digits::<u8>(name, 2) {
                Some(month @ 1..=12) if selection.month(*year, month) => descend(Level::Month {
                    place: place.clone(),
                    year: *year,
                    month,
                }),
                _ => Step::Skip,
            },
            Level::Month { place, year, month } => {
                match digits::<u8>(name, 2).and_then(|d| Day::new(*year, *month, d)) {
                    Some(date) if selection.day(date) => Step::Day(DayPrefix {
                        prefix: child.to_string(),
                        org: place.org.clone(),
                        account: place.account.clone(),
                        region: place.region.clone(),
                        date,
                    }),
                    _ => Step::Skip,
                }
            }
            _ => Step::Skip,
        }
    }
}

/// Where a walk from `prefix` (a folder: a missing final `/` is added) starts: above the
/// layout, at one of its folders (the last `AWSLogs` folder of the prefix starts it), at a day,
/// excluded by the selection, or outside the layout.
pub fn start(prefix: &str, selection: &Selection) -> Start {
    let mut prefix = prefix.trim_start_matches('/').to_string();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    let Some(at) = segments.iter().rposition(|s| *s == "AWSLogs") else {
        return Start::Walk(Cursor {
            prefix,
            level: Level::Top,
        });
    };
    let mut cursor = Cursor {
        prefix: String::new(),
        level: Level::Top,
    };
    let head: String = segments
        .get(..at)
        .unwrap_or_default()
        .iter()
        .map(|s| format!("{s}/"))
        .collect();
    cursor.prefix = head;
    for (i, name) in segments.get(at..).unwrap_or_default().iter().enumerate() {
        let child = format!("{}{name}/", cursor.prefix);
        match cursor.step(&child, selection) {
            Step::Descend(next) => cursor = next,
            Step::Day(day) if at + i + 1 == segments.len() => return Start::Day(day),
            // Below a day folder: not a folder CloudTrail writes.
            Step::Day(_) => return Start::Outside,
            Step::Skip => {
                return if cursor.step(&child, &Selection::default()) == Step::Skip {
                    Start::Outside
                } else {
                    Start::Excluded
                };
            }
        }
    }
    Start::Walk(cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(from: Option<&str>, to: Option<&str>, accounts: &[&str], regions: &[&str]) -> Selection {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection::new(from, to, &owned(accounts), &owned(regions)).unwrap()
    }

    #[test]
    fn days_parse_strictly() {
        assert_eq!(
            Day::parse("2026-02-28"),
            Ok(Day {
                year: 2026,
                month: 2,
                day: 28
            })
        );
        for bad in [
            "2026-2-28",
            "2026-02-30",
            "26-02-01",
            "2026-13-01",
            "2026-02-28x",
            "",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
        assert!(Day::parse("2024-02-29").is_ok(), "leap day");
        assert_eq!(Day::parse("2026-01-05").unwrap().to_string(), "2026-01-05");
    }

    #[test]
    fn selections_check_what_they_are_given() {
        assert!(Selection::new(Some("2026-12-02"), Some("2026-12-01"), &[], &[]).is_err());
        assert!(Selection::new(None, None, &["12345".into()], &[]).is_err());
        assert!(Selection::new(None, None, &[], &["US_EAST_1".into()]).is_err());
        let s = sel(
            None,
            None,
            &["111122223333,444455556666"],
            &["us-east-1", "eu-west-1"],
        );
        assert_eq!(s.accounts.len(), 2);
        assert_eq!(s.regions.len(), 2);
        assert!(!s.is_all());
        assert!(Selection::default().is_all());
    }

    /// Layout per "Finding your CloudTrail log files" (CloudTrail User Guide): a trail's
    /// files, an organisation trail's, digests beside them, and keys outside the layout.
    #[test]
    fn keys_are_placed_in_the_layout() {
        let k = "logs/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/111122223333_CloudTrail_us-east-1_20261201T0005Z_abc.json.gz";
        assert_eq!(
            classify(k),
            KeyClass::Events(TrailKey {
                org: None,
                account: "111122223333".into(),
                region: "us-east-1".into(),
                day: Day::parse("2026-12-01").unwrap(),
            })
        );
        let org = "AWSLogs/o-abcdef1234/444455556666/CloudTrail/eu-west-1/2026/01/31/f.json.gz";
        match classify(org) {
            KeyClass::Events(key) => {
                assert_eq!(key.org.as_deref(), Some("o-abcdef1234"));
                assert_eq!(key.account, "444455556666");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/12/01/d.json.gz"),
            KeyClass::NotEvents
        );
        for outside in [
            "exports/day.jsonl",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/02/30/f.json.gz",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/",
            "AWSLogs/1111/CloudTrail/us-east-1/2026/12/01/f.json.gz",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/sub/f.json.gz",
        ] {
            assert_eq!(classify(outside), KeyClass::Outside, "{outside}");
        }
    }

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(parse_s3_url("./local"), None);
        assert_eq!(
            parse_s3_url("s3://trail-logs/org/AWSLogs/"),
            Some(Ok(("trail-logs".into(), "org/AWSLogs/".into())))
        );
        assert_eq!(
            parse_s3_url("s3://trail-logs"),
            Some(Ok(("trail-logs".into(), String::new())))
        );
        for bad in ["s3://", "s3://Trail_Logs/x", "s3://ab/"] {
            assert!(matches!(parse_s3_url(bad), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn listed_files_are_chosen_by_name_layout_and_selection() {
        let all = Selection::default();
        let us = sel(None, None, &[], &["us-east-1"]);
        let day = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/f.json.gz";
        assert_eq!(choose(day, &all), Choice::Read);
        assert_eq!(choose(day, &us), Choice::Read);
        assert_eq!(
            choose(&day.replace("us-east-1", "eu-west-1"), &us),
            Choice::NotSelected
        );
        assert_eq!(
            choose(&day.replace("CloudTrail/", "CloudTrail-Digest/"), &all),
            Choice::NotEvents
        );
        assert_eq!(choose("exports/a.jsonl", &all), Choice::Read);
        assert_eq!(choose("exports/a.jsonl", &us), Choice::NotSelected);
        for not_input in ["exports/readme.txt", "exports/.a.json", "exports/"] {
            assert_eq!(choose(not_input, &all), Choice::NotInput, "{not_input}");
        }
    }

    /// Walks a listing the way S3 answers with delimiter `/` (common prefixes in key order),
    /// from `start`, depth first: the days in key order.
    fn walk(keys: &[&str], prefix: &str, selection: &Selection) -> Vec<String> {
        fn list(keys: &[&str], p: &str) -> Vec<String> {
            let mut children: Vec<String> = keys
                .iter()
                .filter_map(|k| k.strip_prefix(p))
                .filter_map(|rest| rest.find('/').map(|i| format!("{p}{}", &rest[..=i])))
                .collect();
            children.sort();
            children.dedup();
            children
        }
        fn visit(keys: &[&str], c: &Cursor, selection: &Selection, days: &mut Vec<String>) {
            for child in list(keys, c.prefix()) {
                match c.step(&child, selection) {
                    Step::Descend(next) => visit(keys, &next, selection, days),
                    Step::Day(d) => days.push(d.prefix),
                    Step::Skip => {}
                }
            }
        }
        let mut days = Vec::new();
        match start(prefix, selection) {
            Start::Walk(c) => visit(keys, &c, selection, &mut days),
            Start::Day(d) => days.push(d.prefix),
            Start::Excluded | Start::Outside => {}
        }
        days
    }

    const KEYS: &[&str] = &[
        "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/30/a.json.gz",
        "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/a.json.gz",
        "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/02/a.json.gz",
        "t/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/01/a.json.gz",
        "t/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/12/01/d.json.gz",
        "t/AWSLogs/o-abcdef1234/444455556666/CloudTrail/us-east-1/2027/01/01/a.json.gz",
        "t/AWSLogs/o-abcdef1234/444455556666/CloudTrail/us-east-1/2025/12/31/a.json.gz",
        "t/AWSLogs/notes/readme.txt",
        "t/other/x.json",
    ];

    #[test]
    fn a_walk_finds_every_day_in_key_order() {
        assert_eq!(
            walk(KEYS, "t/", &Selection::default()),
            vec![
                "t/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/01/",
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/30/",
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/",
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/02/",
                "t/AWSLogs/o-abcdef1234/444455556666/CloudTrail/us-east-1/2025/12/31/",
                "t/AWSLogs/o-abcdef1234/444455556666/CloudTrail/us-east-1/2027/01/01/",
            ]
        );
    }

    #[test]
    fn a_walk_prunes_by_day_account_and_region() {
        let december = sel(Some("2026-12-01"), Some("2026-12-31"), &[], &["us-east-1"]);
        assert_eq!(
            walk(KEYS, "t", &december),
            vec![
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/",
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/02/",
            ]
        );
        let member = sel(Some("2026-01-01"), None, &["444455556666"], &[]);
        assert_eq!(
            walk(KEYS, "t/", &member),
            vec!["t/AWSLogs/o-abcdef1234/444455556666/CloudTrail/us-east-1/2027/01/01/"]
        );
        let until = sel(None, Some("2025-12-31"), &[], &[]);
        assert_eq!(
            walk(KEYS, "t/", &until),
            vec!["t/AWSLogs/o-abcdef1234/444455556666/CloudTrail/us-east-1/2025/12/31/"]
        );
    }

    #[test]
    fn a_walk_can_start_inside_the_layout() {
        assert_eq!(
            walk(
                KEYS,
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/",
                &Selection::default()
            ),
            vec![
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/30/",
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/",
                "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/02/",
            ]
        );
        let day = "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01";
        match start(day, &Selection::default()) {
            Start::Day(d) => {
                assert_eq!(d.prefix, format!("{day}/"));
                assert_eq!(d.date.to_string(), "2026-12-01");
                assert_eq!(d.region, "us-east-1");
            }
            other => panic!("{other:?}"),
        }
        let other_region = sel(None, None, &[], &["eu-west-1"]);
        assert_eq!(start(day, &other_region), Start::Excluded);
        assert_eq!(
            start(
                "t/AWSLogs/111122223333/CloudTrail-Digest/",
                &Selection::default()
            ),
            Start::Outside
        );
        match start("", &Selection::default()) {
            Start::Walk(c) => assert!(c.is_top() && c.prefix().is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_day_prefix_is_checked_against_its_folder() {
        let day = |prefix: &str, account: &str| DayPrefix {
            prefix: prefix.into(),
            org: None,
            account: account.into(),
            region: "us-east-1".into(),
            date: Day::parse("2026-11-20").unwrap(),
        };
        let good = "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/";
        assert_eq!(day(good, "111122223333").check(), Ok(()));
        assert!(
            day(good, "444455556666").check().is_err(),
            "another account"
        );
        assert!(day(
            "t/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/",
            "111122223333"
        )
        .check()
        .is_err());
        assert!(day("../../etc/", "../x").check().is_err());
    }

    #[test]
    fn day_prefixes_round_trip_as_json() {
        let d = DayPrefix {
            prefix: "AWSLogs/o-abcdef1234/444455556666/CloudTrail/us-east-1/2027/01/01/".into(),
            org: Some("o-abcdef1234".into()),
            account: "444455556666".into(),
            region: "us-east-1".into(),
            date: Day::parse("2027-01-01").unwrap(),
        };
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains(r#""date":"2027-01-01""#), "{text}");
        assert_eq!(serde_json::from_str::<DayPrefix>(&text).unwrap(), d);
        assert!(serde_json::from_str::<DayPrefix>(
            r#"{"prefix":"p/","account":"1","region":"r","date":"2027-02-30"}"#
        )
        .is_err());
    }
}
