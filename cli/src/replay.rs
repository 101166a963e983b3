//! `tagwatch replay`: CloudTrail archives, EventBridge events and JSON lines through the core,
//! findings on stdout, a summary on stderr.
//!
//! Streaming: files are read line by line (a CloudTrail log file is one line), records that do
//! not mention SSM are skipped before a full parse, findings are written as they are found, and
//! correlation state is bounded by an event-time window.
//!
//! On every core (`--jobs`): inputs are opened, decompressed, framed, prefiltered and parsed on
//! reading threads ([`crate::read`]), several at once; one deciding stage takes their records
//! input by input, in the order given, each input's in its own order: exactly what one thread
//! would decide, so the findings do not depend on the number of jobs. A reading thread holds at
//! most a few chunks of its input ahead of the deciding stage.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::Value;
use tagwatch_core::archive::{choose, parse_s3_url, Choice, Selection};
use tagwatch_core::intent::inventory::Inventory;
use tagwatch_core::watch::correlation::MemoryStore;
use tagwatch_core::watch::counts::Counts;
use tagwatch_core::watch::dedupe::Dedupe;
use tagwatch_core::watch::event::normalize;
use tagwatch_core::watch::finding::{Finding, FindingKind};
use tagwatch_core::watch::watcher::Watcher;

use crate::input::{self, InputError};
use crate::read::{ranges, read_input, Chunk, Item, Range, Source};

/// Output format of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    /// One JSON finding per line.
    Jsonl,
    /// A table for people.
    Table,
}

/// Finding kinds for `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Violation,
    AccessDenied,
    AccessDeniedSpike,
    Unevaluated,
    UnloggedCommand,
}

impl FailOn {
    fn kind(self) -> FindingKind {
        match self {
            FailOn::Violation => FindingKind::Violation,
            FailOn::AccessDenied => FindingKind::AccessDenied,
            FailOn::AccessDeniedSpike => FindingKind::AccessDeniedSpike,
            FailOn::Unevaluated => FindingKind::Unevaluated,
            FailOn::UnloggedCommand => FindingKind::UnloggedCommand,
        }
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Intent file (JSON).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Inventory of resource tags: {"i-0123...": {"Env": "prod"}, ...}. Resources absent from
    /// it have unknown tags.
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// Look up live tags in AWS for instances (EC2 DescribeTags) and managed nodes (SSM
    /// ListTagsForResource) that `--inventory` does not list. Credentials, region and endpoint
    /// come from the standard AWS environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).
    /// Tags are today's, not those at event time.
    #[cfg(feature = "aws")]
    #[arg(long)]
    inventory_from_aws: bool,
    /// Findings format.
    #[arg(long, value_enum, default_value_t = ReplayFormat::Jsonl)]
    format: ReplayFormat,
    /// Exit 1 when a finding of this kind is found (repeatable).
    #[arg(long = "fail-on", value_enum, value_name = "KIND")]
    fail_on: Vec<FailOn>,
    /// Exit 2 when any input is malformed (otherwise reported, counted and skipped).
    #[arg(long)]
    strict: bool,
    /// How long (seconds of event time) a SendCommand and its status events wait for each
    /// other before the status event is reported unevaluated.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    correlation_window: u64,
    /// The largest record (one line, or one multi-line document) read whole, in bytes: a longer
    /// one is reported malformed with its position and skipped without being held in memory.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_RECORD_BYTES)]
    max_record_bytes: usize,
    /// Inputs read at once (decompressed, framed, prefiltered, parsed) while one thread
    /// decides in input order: the findings are the same for every value. Default: the
    /// machine's cores.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// With more than one job, an uncompressed JSON-lines file larger than this is read as
    /// ranges of about this many bytes, on several threads (the findings are the same).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SPLIT_BYTES)]
    split_bytes: u64,
    /// Read only the CloudTrail log files of days from this one (YYYY-MM-DD, UTC), by the
    /// `AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/` layout of S3
    /// archives and of directories (the day CloudTrail delivered a file: a call in a day's
    /// last minutes can be in the next day's folder).
    #[arg(long, value_name = "DAY")]
    from: Option<String>,
    /// Read only the log files of days up to this one (included), as `--from`.
    #[arg(long, value_name = "DAY")]
    to: Option<String>,
    /// Read only these accounts' log files (ids, comma-separated or repeated), by the layout.
    #[arg(long, value_name = "IDS")]
    accounts: Vec<String>,
    /// Read only these regions' log files (comma-separated or repeated), by the layout.
    #[arg(long, value_name = "REGIONS")]
    regions: Vec<String>,
    /// S3 inputs: folders listed and objects fetched at once.
    #[cfg(feature = "aws")]
    #[arg(long, value_name = "N", default_value_t = 16)]
    s3_concurrency: usize,
    /// Also write one self-contained HTML page of the findings (timeline per principal, top
    /// principals, instances and documents, the findings table with filters) to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Files (.json, .jsonl, .json.gz, CloudTrail log files), directories (recursive), `-` for
    /// stdin, or S3 archives: `s3://bucket/prefix/` (objects under the prefix, in key order;
    /// CloudTrail's layout below it is walked folder by folder, only selected folders listed).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

/// 64 MiB: the ranges a large JSON-lines file is read in.
pub const DEFAULT_SPLIT_BYTES: u64 = 64 * 1024 * 1024;

/// 64 MiB: far above any CloudTrail record (and log file) AWS writes.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Counters of the input side: what was read before the watcher saw it. The run's totals
/// ([`Run::totals`]) add these to the watcher's [`Counts`].
#[derive(Debug, Default)]
struct InputCounts {
    files: u64,
    /// Events and records read (malformed ones included).
    read: u64,
    /// Records the prefilter skipped without a full parse (certainly not SSM).
    prefiltered: u64,
    /// Inputs that could not be processed (reported with their position).
    malformed: u64,
}

struct Run<'i, W: Write> {
    watcher: Watcher<'i, MemoryStore>,
    /// Every finding, kept for `--report` (only when one is asked for).
    reported: Option<Vec<Finding>>,
    /// Repeats of a finding group within the intent's dedupe window, counted as the functions
    /// count them.
    dedupe: Dedupe,
    inventory: Inventory,
    #[cfg(feature = "aws")]
    live: Option<crate::live::LiveInventory>,
    out: W,
    format: ReplayFormat,
    input: InputCounts,
    table_header: bool,
    fail_kinds: Vec<FindingKind>,
    failed_kind_seen: bool,
    progress: Option<Progress>,
}

struct Progress {
    /// indicatif's bar over the input bytes; it draws on a terminal only, at most 20 times a
    /// second.
    bar: indicatif::ProgressBar,
    done_bytes: u64,
    started: Instant,
}

impl Progress {
    fn new(total_bytes: u64, started: Instant) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total_bytes),
            indicatif::ProgressDrawTarget::stderr(),
        );
        // The template is fixed at compile time; a template indicatif rejected would only lose
        // the style, never the run.
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "[{bar:30}] {percent:>3}%  {msg}  ({bytes} of {total_bytes})",
        ) {
            bar.set_style(style.progress_chars("#-"));
        }
        Progress {
            bar,
            done_bytes: 0,
            started,
        }
    }

    fn tick(&self, events: u64) {
        let rate = events as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_position(self.done_bytes);
        self.bar
            .set_message(format!("{events} events  {rate:.0}/s"));
    }
}

/// One input, in the order it is decided.
enum Input {
    Stdin,
    File(PathBuf),
    /// An S3 object: its number among the listed objects.
    #[cfg_attr(
        not(feature = "aws"),
        expect(dead_code, reason = "S3 inputs need the aws feature")
    )]
    Object(usize),
}

/// The run's inputs: paths expanded (directories walked, S3 prefixes listed), in order.
struct Inputs {
    list: Vec<Input>,
    #[cfg(feature = "aws")]
    s3: Option<crate::s3::S3Inputs>,
    /// Files in directories passed over: digests and Insights files, not selected.
    not_events: u64,
    not_selected: u64,
}

impl Inputs {
    fn name(&self, input: &Input) -> String {
        match input {
            Input::Stdin => "<stdin>".to_string(),
            Input::File(p) => p.display().to_string(),
            #[cfg(feature = "aws")]
            Input::Object(i) => self
                .s3
                .as_ref()
                .and_then(|s| s.object(*i))
                .map_or_else(|| format!("<object {i}>"), |o| o.url()),
            #[cfg(not(feature = "aws"))]
            Input::Object(i) => format!("<object {i}>"),
        }
    }

    fn size(&self, input: &Input) -> u64 {
        match input {
            Input::Stdin => 0,
            Input::File(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            #[cfg(feature = "aws")]
            Input::Object(i) => self
                .s3
                .as_ref()
                .and_then(|s| s.object(*i))
                .map_or(0, |o| o.size),
            #[cfg(not(feature = "aws"))]
            Input::Object(_) => 0,
        }
    }

    /// The reading source of an input.
    fn source<'a>(&'a self, input: &'a Input) -> Source<'a> {
        match input {
            Input::Stdin => Source::Stdin,
            Input::File(p) => Source::File(p),
            #[cfg(feature = "aws")]
            Input::Object(i) => Source::Open(Box::new(move || match &self.s3 {
                Some(s3) => s3.open(*i),
                None => Err(std::io::Error::other("no S3 inputs")),
            })),
            #[cfg(not(feature = "aws"))]
            Input::Object(_) => Source::Open(Box::new(|| {
                Err(std::io::Error::other("built without AWS support"))
            })),
        }
    }
}

fn expand(args: &ReplayArgs, selection: &Selection) -> Result<Inputs, InputError> {
    let mut inputs = Inputs {
        list: Vec::new(),
        #[cfg(feature = "aws")]
        s3: None,
        not_events: 0,
        not_selected: 0,
    };
    for p in &args.paths {
        if p == "-" {
            inputs.list.push(Input::Stdin);
            continue;
        }
        if let Some(url) = parse_s3_url(p) {
            let (bucket, prefix) = url.map_err(InputError::Usage)?;
            #[cfg(feature = "aws")]
            {
                let s3 = match &mut inputs.s3 {
                    Some(s3) => s3,
                    None => inputs
                        .s3
                        .insert(crate::s3::S3Inputs::new(args.s3_concurrency)?),
                };
                let numbers = s3.add(p, &bucket, &prefix, selection)?;
                inputs.list.extend(numbers.into_iter().map(Input::Object));
                continue;
            }
            #[cfg(not(feature = "aws"))]
            {
                let _ = (bucket, prefix);
                return Err(InputError::Usage(format!(
                    "`{p}`: this tagwatch was built without AWS support (the `aws` feature), which S3 archives need"
                )));
            }
        }
        let path = PathBuf::from(p);
        if path.is_dir() {
            let mut files = Vec::new();
            walk(&path, &mut files)?;
            files.sort();
            for f in files {
                match choose(&f.to_string_lossy().replace('\\', "/"), selection) {
                    Choice::Read => inputs.list.push(Input::File(f)),
                    Choice::NotEvents => inputs.not_events += 1,
                    Choice::NotSelected => inputs.not_selected += 1,
                    Choice::NotInput => {}
                }
            }
        } else if path.exists() {
            // A file named on the command line is read whatever its place.
            inputs.list.push(Input::File(path));
        } else {
            return Err(InputError::Read {
                path: p.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        }
    }
    if inputs.not_events + inputs.not_selected > 0 {
        eprintln!(
            "directories: passed over {} digest or Insights files, {} files not selected",
            inputs.not_events, inputs.not_selected
        );
    }
    Ok(inputs)
}

/// Every file below `dir` (folders recursively); which are inputs is [`choose`]'s to say.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let entries = std::fs::read_dir(dir).map_err(|source| InputError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| InputError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

impl<W: Write> Run<'_, W> {
    /// What the run counted: the watcher's counts, with the records skipped and the inputs
    /// found malformed before it saw them.
    fn totals(&self) -> Counts {
        let mut c = self.watcher.counts;
        c.add(&Counts {
            skipped: self.input.prefiltered,
            malformed_events: self.input.malformed,
            ..Counts::default()
        });
        c
    }

    fn malformed(&mut self, origin: &str, reason: &str) {
        self.input.malformed += 1;
        let line = format!("{origin}: malformed: {reason}");
        match &self.progress {
            // Printed above the bar, which is drawn again below it.
            Some(p) => p.bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn emit(&mut self, findings: Vec<Finding>) -> std::io::Result<()> {
        for f in findings {
            if !f.suppressed && self.fail_kinds.contains(&f.kind) {
                self.failed_kind_seen = true;
            }
            if let Some(kept) = self.reported.as_mut() {
                kept.push(f.clone());
            }
            match self.format {
                ReplayFormat::Jsonl => {
                    serde_json::to_writer(&mut self.out, &f)?;
                    self.out.write_all(b"\n")?;
                }
                ReplayFormat::Table => self.table_row(&f)?,
            }
        }
        Ok(())
    }

    fn table_row(&mut self, f: &Finding) -> std::io::Result<()> {
        if !self.table_header {
            self.table_header = true;
            writeln!(
                self.out,
                "{:<20} {:<20} {:<32} {:<17} {:<28} {:<14} REASON",
                "KIND", "TIME", "PRINCIPAL", "ACTION", "RESOURCE", "INTENDED"
            )?;
        }
        let short = |s: Option<&str>, n: usize| -> String {
            let s = s.unwrap_or("-");
            let tail = s.rsplit(['/', ':']).next().unwrap_or(s);
            let t = if s.contains("assumed-role/") {
                s.split("assumed-role/").nth(1).unwrap_or(s)
            } else {
                tail
            };
            t.chars().take(n).collect()
        };
        let intended = f.intended.map_or("-", |v| v.as_str());
        // A suppressed finding is listed, marked, with the reason it is tolerated.
        let kind = if f.suppressed {
            format!("({})", f.kind.as_str())
        } else {
            f.kind.as_str().to_string()
        };
        let suppressed = match &f.suppression_reason {
            Some(why) if f.suppressed => format!(" [suppressed: {why}]"),
            _ => String::new(),
        };
        writeln!(
            self.out,
            "{:<20} {:<20} {:<32} {:<17} {:<28} {:<14} {}{suppressed}",
            kind,
            f.meta.event_time.chars().take(20).collect::<String>(),
            short(f.principal.as_deref(), 32),
            f.action.as_deref().unwrap_or("-"),
            short(f.resource.as_deref(), 28),
            intended,
            f.reason
        )
    }

    /// Decides one record the reading stage parsed.
    fn value(&mut self, v: &Value, origin: &dyn Fn() -> String) -> std::io::Result<()> {
        match normalize(v) {
            Ok(event) => {
                #[cfg(feature = "aws")]
                if let Some(live) = self.live.as_mut() {
                    live.fill(&event, self.watcher.intent(), &mut self.inventory)?;
                }
                let mut findings = self.watcher.handle(&event, &self.inventory);
                self.dedupe.count(&mut findings);
                self.emit(findings)
            }
            Err(e) => {
                self.malformed(&origin(), &e.to_string());
                Ok(())
            }
        }
    }

    /// Takes one chunk of the input `name`, in order; `lines_before` is the number of lines of
    /// the input's earlier ranges.
    fn take(&mut self, name: &str, lines_before: usize, chunk: Chunk) -> std::io::Result<()> {
        self.input.read += chunk.read;
        self.input.prefiltered += chunk.prefiltered;
        for item in chunk.items {
            match item {
                Item::Record { value, origin } => {
                    self.value(&value, &|| origin.render(name, lines_before))?;
                }
                Item::Malformed { origin, reason } => {
                    self.malformed(&origin.render(name, lines_before), &reason);
                }
            }
        }
        if let Some(p) = self.progress.as_mut() {
            p.done_bytes += chunk.bytes;
            p.tick(self.input.read);
        }
        Ok(())
    }
}

/// One piece of reading: an input, or a range of a large JSON-lines file.
struct Part<'a> {
    input: &'a Input,
    range: Option<Range>,
    /// The input's name, for origins.
    name: String,
    /// The first range of its input (its lines are counted from 1 again).
    first: bool,
}

impl Part<'_> {
    fn source<'a>(&'a self, inputs: &'a Inputs) -> Source<'a> {
        match (self.input, self.range) {
            (Input::File(p), Some(r)) => Source::Range(p, r),
            (input, _) => inputs.source(input),
        }
    }
}

/// Reads `inputs` on `jobs` threads and hands their chunks to `take` (with the input's name
/// and the lines of its earlier ranges), input by input and range by range in the given order.
/// Each part has its own bounded channel: a thread reading ahead waits when the deciding stage
/// has not reached its part yet (parts are taken in order, so the earliest unfinished one
/// always has a thread on it), and no thread starts a part more than [`READ_AHEAD`] parts
/// per job past the one being decided, so what waits to be decided stays bounded however
/// much faster reading is than deciding. A failure of `take` stops the readers.
/// Parts read ahead of the deciding stage, per job.
const READ_AHEAD: usize = 4;

/// The part the deciding stage is on, for readers that wait to start theirs.
struct Deciding {
    part: Mutex<usize>,
    moved: Condvar,
}

impl Deciding {
    fn set(&self, part: usize) {
        *self.part.lock().unwrap_or_else(|p| p.into_inner()) = part;
        self.moved.notify_all();
    }

    /// Waits until `part` is within `ahead` parts of the one being decided, or `stop`.
    fn wait_for(&self, part: usize, ahead: usize, stop: &AtomicBool) {
        let mut deciding = self.part.lock().unwrap_or_else(|p| p.into_inner());
        while part > *deciding + ahead && !stop.load(Ordering::SeqCst) {
            deciding = self.moved.wait(deciding).unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn read_in_order(
    inputs: &Inputs,
    jobs: usize,
    split_bytes: u64,
    max_record: usize,
    take: &mut dyn FnMut(&str, usize, Chunk) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let only_stdin = inputs.list.iter().all(|i| matches!(i, Input::Stdin));
    if jobs <= 1 || only_stdin {
        // One thread: read and decide in turn (stdin, or `--jobs 1`).
        let mut buffer = Vec::new();
        for input in &inputs.list {
            let input_name = inputs.name(input);
            let mut failed = None;
            read_input(
                inputs.source(input),
                max_record,
                &mut buffer,
                &mut |chunk| match take(&input_name, 0, chunk) {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                },
            );
            if let Some(e) = failed {
                return Err(e);
            }
        }
        return Ok(());
    }
    let mut parts: Vec<Part<'_>> = Vec::new();
    for input in &inputs.list {
        let split = match input {
            Input::File(p) => ranges(p, split_bytes),
            _ => None,
        };
        match split {
            Some(ranges) => {
                for (i, r) in ranges.into_iter().enumerate() {
                    parts.push(Part {
                        input,
                        range: Some(r),
                        name: inputs.name(input),
                        first: i == 0,
                    });
                }
            }
            None => parts.push(Part {
                input,
                range: None,
                name: inputs.name(input),
                first: true,
            }),
        }
    }
    let (senders, receivers): (Vec<SyncSender<Chunk>>, Vec<Receiver<Chunk>>) =
        parts.iter().map(|_| sync_channel(4)).unzip();
    let senders: Vec<Mutex<Option<SyncSender<Chunk>>>> =
        senders.into_iter().map(|s| Mutex::new(Some(s))).collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let deciding = Deciding {
        part: Mutex::new(0),
        moved: Condvar::new(),
    };
    let ahead = READ_AHEAD * jobs;
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(parts.len()) {
            scope.spawn(|| {
                let mut buffer = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let (Some(part), Some(slot)) = (parts.get(i), senders.get(i)) else {
                        return;
                    };
                    deciding.wait_for(i, ahead, &stop);
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Some(tx) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                        continue;
                    };
                    read_input(part.source(inputs), max_record, &mut buffer, &mut |chunk| {
                        !stop.load(Ordering::SeqCst) && tx.send(chunk).is_ok()
                    });
                }
            });
        }
        let mut result = Ok(());
        let mut lines_before = 0;
        'parts: for (i, (part, rx)) in parts.iter().zip(&receivers).enumerate() {
            deciding.set(i);
            if part.first {
                lines_before = 0;
            }
            for chunk in rx {
                let lines = chunk.lines;
                if let Err(e) = take(&part.name, lines_before, chunk) {
                    result = Err(e);
                    break 'parts;
                }
                lines_before += lines;
            }
        }
        if result.is_err() {
            stop.store(true, Ordering::SeqCst);
            deciding.set(parts.len());
        }
        // Readers blocked on a full channel are freed when the receivers go.
        drop(receivers);
        result
    })
}

/// Runs `replay`; returns the exit code.
pub fn run(args: &ReplayArgs, out: &mut impl Write) -> Result<u8, InputError> {
    let started = Instant::now();
    let intent = input::load_intent(&args.policy, false)?.value;
    let inventory = match &args.inventory {
        Some(p) => {
            let name = p.display().to_string();
            let text = input::read_text(&name)?;
            Inventory::parse(&text, Some(&name)).map_err(|e| InputError::Invalid(e.diagnostics))?
        }
        None => Inventory::default(),
    };
    let selection = Selection::new(
        args.from.as_deref(),
        args.to.as_deref(),
        &args.accounts,
        &args.regions,
    )
    .map_err(InputError::Usage)?;
    #[cfg_attr(
        not(feature = "aws"),
        expect(unused_mut, reason = "S3 inputs start fetching")
    )]
    let mut inputs = expand(args, &selection)?;
    let total_bytes: u64 = inputs.list.iter().map(|i| inputs.size(i)).sum();
    let progress = (std::io::stderr().is_terminal() && total_bytes > 32 * 1024 * 1024)
        .then(|| Progress::new(total_bytes, started));
    let window_ms = i64::try_from(args.correlation_window)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let mut run = Run {
        watcher: Watcher::new(&intent, MemoryStore::new(window_ms)),
        dedupe: Dedupe::new(intent.dedupe_window_ms()),
        reported: args.report.as_ref().map(|_| Vec::new()),
        inventory,
        #[cfg(feature = "aws")]
        live: if args.inventory_from_aws {
            Some(crate::live::LiveInventory::new()?)
        } else {
            None
        },
        out: std::io::BufWriter::with_capacity(64 * 1024, out),
        format: args.format,
        input: InputCounts::default(),
        table_header: false,
        fail_kinds: args.fail_on.iter().map(|f| f.kind()).collect(),
        failed_kind_seen: false,
        progress,
    };
    let w = |e: std::io::Error| InputError::Read {
        path: "<stdout>".to_string(),
        source: e,
    };
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    run.input.files = inputs.list.len() as u64;
    #[cfg(feature = "aws")]
    if let Some(s3) = inputs.s3.as_mut() {
        s3.start();
    }
    let decided = read_in_order(
        &inputs,
        jobs,
        args.split_bytes,
        args.max_record_bytes.max(1),
        &mut |name, lines_before, chunk| run.take(name, lines_before, chunk),
    );
    if let Err(e) = decided {
        #[cfg(feature = "aws")]
        if let Some(failure) = run.live.as_mut().and_then(|l| l.failure.take()) {
            return Err(InputError::Aws(failure));
        }
        return Err(w(e));
    }
    let mut tail = run.watcher.finish();
    run.dedupe.count(&mut tail);
    run.emit(tail).map_err(w)?;
    run.out.flush().map_err(w)?;
    if let Some(p) = &run.progress {
        p.tick(run.input.read);
        p.bar.finish();
        // indicatif leaves the cursor after the finished bar.
        eprintln!();
    }
    if let (Some(path), Some(findings)) = (&args.report, &run.reported) {
        let meta = crate::report::ReportMeta {
            generated_by: format!("tagwatch {} replay", env!("CARGO_PKG_VERSION")),
            inputs: args.paths.clone(),
            events_read: run.input.read,
        };
        let page = crate::report::render(findings, &meta).map_err(InputError::Json)?;
        std::fs::write(path, page).map_err(|source| InputError::Write {
            path: path.display().to_string(),
            source,
        })?;
        eprintln!("report: {} ({} findings)", path.display(), findings.len());
    }
    let c = run.totals();
    let elapsed = started.elapsed().as_secs_f64();
    let relevant = c.activities + c.status_events;
    eprintln!(
        "tagwatch replay: {} events read from {} input{} ({relevant} relevant, {} skipped, {} malformed, {} duplicates) in {elapsed:.2} s ({:.0} events/s)",
        run.input.read,
        run.input.files,
        if run.input.files == 1 { "" } else { "s" },
        c.skipped,
        c.malformed_events,
        c.duplicates,
        run.input.read as f64 / elapsed.max(1e-9),
    );
    eprintln!(
        "findings: {} violation, {} access_denied, {} access_denied_spike, {} unevaluated, {} unlogged_command; {} of {} resources within intent; {} terminated sessions; {} runs started by Systems Manager ({} ignored by origins, {} association commands accounted for)",
        c.violations, c.access_denied, c.spikes, c.unevaluated, c.unlogged_commands, c.compliant, c.resources_evaluated, c.terminated_sessions,
        c.origin_runs, c.origin_ignored, c.association_commands
    );
    if !intent.suppressions.is_empty() {
        eprintln!(
            "suppressed: {} findings (logged above with \"suppressed\": true, not counted by kind)",
            c.suppressed
        );
        // A suppression that matched nothing in the whole archive is dead weight, or misspelt.
        for (s, hits) in intent
            .suppressions
            .iter()
            .zip(run.watcher.suppression_hits())
        {
            if *hits == 0 {
                eprintln!(
                    "warning: suppression \"{}\" (expires {}) matched no finding in this replay",
                    s.reason, s.expires
                );
            }
        }
    }
    if args.strict && run.input.malformed > 0 {
        return Ok(2);
    }
    Ok(if run.failed_kind_seen { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readers wait to start a part more than `ahead` parts past the one being decided, and
    /// go on when the deciding stage moves or the run stops.
    #[test]
    fn readers_wait_for_the_deciding_stage() {
        let deciding = Deciding {
            part: Mutex::new(0),
            moved: Condvar::new(),
        };
        let stop = AtomicBool::new(false);
        let started = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                deciding.wait_for(5, 2, &stop);
                started.store(1, Ordering::SeqCst);
            });
            deciding.wait_for(2, 2, &stop); // within reach: no wait
            deciding.set(2);
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(started.load(Ordering::SeqCst), 0, "part 5 is 3 past part 2");
            deciding.set(3);
            waiting.join().unwrap();
            assert_eq!(started.load(Ordering::SeqCst), 1);
            let stopped = scope.spawn(|| deciding.wait_for(100, 2, &stop));
            stop.store(true, Ordering::SeqCst);
            deciding.set(3);
            stopped.join().unwrap();
        });
    }
}
