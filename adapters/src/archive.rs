//! CloudTrail archives in S3: the listing of an archive's selected part
//! ([`tagwatch_core::archive`] decides which folders), and objects read ahead with bounded
//! concurrency, each handed to a reading thread as a plain [`std::io::Read`].
//!
//! Listing walks the layout one folder level at a time (`ListObjectsV2` with delimiter `/`), so
//! a selection of a few days, accounts or regions lists only their folders, never the whole
//! bucket; folders of one level are listed concurrently. A day's folder is then listed whole,
//! in key order. A body that breaks off while streaming is read again from where it broke
//! (`Range`, pinned to the object's ETag with `If-Match`), up to [`BODY_RESUMES`] times; the
//! SDK itself retries throttling and 5xx answers.

use std::io::Read;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tagwatch_core::archive::{self, Choice, DayPrefix, Selection, Start, Step};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::AdapterError;

/// How often a body that broke off is asked for again from where it broke.
pub const BODY_RESUMES: u32 = 3;

/// An object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub size: u64,
}

impl Object {
    /// `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// What a listing found: the objects to read, in key order, and what it passed over.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<Object>,
    /// Digest and Insights files beside the log files of calls.
    pub not_events: u64,
    /// Objects of the layout outside the selection, or outside the layout when a selection
    /// is given (a listing that walks the layout never lists the unselected folders).
    pub not_selected: u64,
}

/// How an archive's part is read: its days, or (not a CloudTrail layout) its objects as they
/// are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Days(Vec<DayPrefix>),
    /// The prefix holds no `AWSLogs/` folder: every object under it is an input.
    Flat {
        prefix: String,
    },
}

/// The S3 side of an archive.
#[derive(Debug, Clone)]
pub struct S3Archive {
    s3: aws_sdk_s3::Client,
    /// Folders listed at once.
    concurrency: usize,
}

impl S3Archive {
    pub fn new(s3: aws_sdk_s3::Client, concurrency: usize) -> Self {
        S3Archive {
            s3,
            concurrency: concurrency.max(1),
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// One `ListObjectsV2` walk of `prefix`: its sub-folders (with `delimiter`) or its objects
    /// (keys and sizes), every page, in key order.
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: bool,
    ) -> Result<(Vec<String>, Vec<Object>), AdapterError> {
        let mut folders = Vec::new();
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self.s3.list_objects_v2().bucket(bucket).prefix(prefix);
            if delimiter {
                req = req.delimiter("/");
            }
            if let Some(t) = token.take() {
                req = req.continuation_token(t);
            }
            let page = req
                .send()
                .await
                .map_err(|e| AdapterError::aws("S3 ListObjectsV2", e))?;
            folders.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            objects.extend(page.contents().iter().filter_map(|o| {
                Some(Object {
                    bucket: bucket.to_string(),
                    key: o.key()?.to_string(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                })
            }));
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok((folders, objects))
    }

    /// The day folders of the archive at `bucket`/`prefix` that `selection` admits, in key
    /// order, or [`Plan::Flat`] when the prefix holds no CloudTrail layout.
    pub async fn plan(
        &self,
        bucket: &str,
        prefix: &str,
        selection: &Selection,
    ) -> Result<Plan, AdapterError> {
        let mut frontier = match archive::start(prefix, selection) {
            Start::Walk(cursor) => vec![cursor],
            Start::Day(day) => return Ok(Plan::Days(vec![day])),
            Start::Excluded => return Ok(Plan::Days(Vec::new())),
            Start::Outside => {
                return Ok(Plan::Flat {
                    prefix: prefix.to_string(),
                })
            }
        };
        let mut days = Vec::new();
        while !frontier.is_empty() {
            // Futures made first: a stream's `map` closure would make the whole future
            // borrow-generic, and no longer `Send`.
            let calls: Vec<_> = frontier
                .iter()
                .map(|c| self.list(bucket, c.prefix(), true))
                .collect();
            let listed: Vec<_> = stream::iter(calls)
                .buffered(self.concurrency)
                .collect()
                .await;
            let mut next = Vec::new();
            for (cursor, listing) in frontier.iter().zip(listed) {
                let (folders, _) = listing?;
                let mut descended = false;
                for folder in &folders {
                    match cursor.step(folder, selection) {
                        Step::Descend(c) => {
                            descended = true;
                            next.push(c);
                        }
                        Step::Day(d) => days.push(d),
                        Step::Skip => {}
                    }
                }
                if cursor.is_top() && !descended {
                    return Ok(Plan::Flat {
                        prefix: cursor.prefix().to_string(),
                    });
                }
            }
            frontier = next;
        }
        days.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        Ok(Plan::Days(days))
    }

    /// The objects under `prefix` to read, in key order: inputs by name (`.json`, `.jsonl`,
    /// `.gz`), log files of calls, admitted by `selection`.
    pub async fn objects(
        &self,
        bucket: &str,
        prefix: &str,
        selection: &Selection,
    ) -> Result<Listing, AdapterError> {
        let (_, objects) = self.list(bucket, prefix, false).await?;
        let mut listing = Listing::default();
        for o in objects {
            match archive::choose(&o.key, selection) {
                Choice::Read => listing.objects.push(o),
                Choice::NotEvents => listing.not_events += 1,
                Choice::NotSelected => listing.not_selected += 1,
                Choice::NotInput => {}
            }
        }
        Ok(listing)
    }

    /// Every object to read for a plan, in key order: each day's folder listed (several at
    /// once), or the flat prefix.
    pub async fn listing(
        &self,
        bucket: &str,
        plan: &Plan,
        selection: &Selection,
    ) -> Result<Listing, AdapterError> {
        match plan {
            Plan::Flat { prefix } => self.objects(bucket, prefix, selection).await,
            Plan::Days(days) => {
                let calls: Vec<_> = days
                    .iter()
                    .map(|d| self.objects(bucket, &d.prefix, selection))
                    .collect();
                let listed: Vec<_> = stream::iter(calls)
                    .buffered(self.concurrency)
                    .collect()
                    .await;
                let mut all = Listing::default();
                for l in listed {
                    let l = l?;
                    all.objects.extend(l.objects);
                    all.not_events += l.not_events;
                    all.not_selected += l.not_selected;
                }
                Ok(all)
            }
        }
    }
}

impl S3Archive {
    /// A whole object (a CloudTrail log file: small), read again from where it broke if its
    /// body breaks off.
    pub async fn get_bytes(&self, bucket: &str, key: &str) -> Result<Vec<u8>, AdapterError> {
        let mut body = Body::new(
            self.s3.clone(),
            Object {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size: 0,
            },
        );
        let mut out = Vec::new();
        while let Some(bytes) = body.next().await? {
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }

    /// Writes an object whole.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), AdapterError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| AdapterError::aws("S3 PutObject", e))?;
        Ok(())
    }

    /// Whether an object exists (`HeadObject`; 404 is "no").
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, AdapterError> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(AdapterError::aws("S3 HeadObject", e)),
        }
    }
}

/// An object's body, read from where it got to: a body that broke off is asked for again from
/// that offset, pinned to the first answer's ETag.
struct Body {
    s3: aws_sdk_s3::Client,
    object: Object,
    etag: Option<String>,
    /// Bytes delivered so far.
    offset: u64,
    stream: Option<ByteStream>,
    done: bool,
    resumes: u32,
}

impl Body {
    fn new(s3: aws_sdk_s3::Client, object: Object) -> Body {
        Body {
            s3,
            object,
            etag: None,
            offset: 0,
            stream: None,
            done: false,
            resumes: 0,
        }
    }

    async fn get(&mut self) -> Result<ByteStream, AdapterError> {
        let mut req = self
            .s3
            .get_object()
            .bucket(&self.object.bucket)
            .key(&self.object.key);
        if self.offset > 0 {
            req = req.range(format!("bytes={}-", self.offset));
            if let Some(etag) = &self.etag {
                req = req.if_match(etag);
            }
        }
        let out = req
            .send()
            .await
            .map_err(|e| AdapterError::aws("S3 GetObject", e))?;
        if self.etag.is_none() {
            self.etag = out.e_tag().map(str::to_string);
        }
        if self.offset == 0 {
            if let Some(len) = out.content_length().and_then(|l| u64::try_from(l).ok()) {
                self.object.size = len;
            }
        }
        Ok(out.body)
    }

    /// The next bytes of the body, `None` at its end.
    async fn next(&mut self) -> Result<Option<Bytes>, AdapterError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let stream = match self.stream.as_mut() {
                Some(s) => s,
                None => {
                    let body = self.get().await?;
                    self.stream.insert(body)
                }
            };
            let broke = match stream.next().await {
                Some(Ok(bytes)) => {
                    self.offset += bytes.len() as u64;
                    return Ok(Some(bytes));
                }
                None if self.offset >= self.object.size => {
                    self.done = true;
                    return Ok(None);
                }
                None => AdapterError::retryable(
                    "S3 GetObject",
                    format!(
                        "the body ended after {} of {} bytes",
                        self.offset, self.object.size
                    ),
                ),
                Some(Err(e)) => AdapterError::aws("S3 GetObject", e),
            };
            if self.resumes >= BODY_RESUMES {
                return Err(broke);
            }
            self.resumes += 1;
            self.stream = None;
        }
    }
}

type Fetched = Result<(Bytes, Body, OwnedSemaphorePermit), AdapterError>;

/// Objects fetched ahead, in order, at most `concurrency` at once (each holds up to
/// `head_bytes` read ahead until a reading thread opens it); a reading thread opens object `i`
/// with [`ReadAhead::open`] and reads it as a plain [`Read`], the rest of the body streaming
/// as it reads. An object's slot is freed when its reader is dropped, so objects are fetched
/// in order as readers finish: the earliest unread object always has one.
pub struct ReadAhead {
    handle: Handle,
    slots: Vec<Mutex<Option<oneshot::Receiver<Fetched>>>>,
}

impl ReadAhead {
    /// Starts fetching on `handle` (a multi-thread runtime's: readers block on it from their
    /// own threads).
    pub fn start(
        handle: Handle,
        s3: aws_sdk_s3::Client,
        objects: Vec<Object>,
        concurrency: usize,
        head_bytes: usize,
    ) -> ReadAhead {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let (senders, receivers): (Vec<_>, Vec<_>) = objects
            .iter()
            .map(|_| oneshot::channel::<Fetched>())
            .unzip();
        handle.spawn(async move {
            for (object, tx) in objects.into_iter().zip(senders) {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                if tx.is_closed() {
                    continue;
                }
                let s3 = s3.clone();
                tokio::spawn(async move {
                    let fetched = read_head(Body::new(s3, object), head_bytes).await;
                    let _ = tx.send(fetched.map(|(head, body)| (head, body, permit)));
                });
            }
        });
        ReadAhead {
            handle,
            slots: receivers.into_iter().map(|r| Mutex::new(Some(r))).collect(),
        }
    }

    /// Object `i` as a reader (waits until its first bytes are fetched). Each object is opened
    /// once.
    pub fn open(&self, i: usize) -> std::io::Result<ObjectReader> {
        let rx = self
            .slots
            .get(i)
            .and_then(|slot| slot.lock().unwrap_or_else(|p| p.into_inner()).take())
            .ok_or_else(|| std::io::Error::other(format!("object {i} opened twice")))?;
        match self.handle.block_on(rx) {
            Ok(Ok((head, body, permit))) => Ok(ObjectReader {
                handle: self.handle.clone(),
                buf: head,
                body,
                _permit: permit,
            }),
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => Err(std::io::Error::other("the fetch was abandoned")),
        }
    }
}

async fn read_head(mut body: Body, head_bytes: usize) -> Result<(Bytes, Body), AdapterError> {
    let mut head = Vec::new();
    while head.len() < head_bytes {
        match body.next().await? {
            Some(b) if head.is_empty() && b.len() >= head_bytes => return Ok((b, body)),
            Some(b) => head.extend_from_slice(&b),
            None => break,
        }
    }
    Ok((Bytes::from(head), body))
}

/// One object's bytes: what was read ahead, then the rest as it streams.
pub struct ObjectReader {
    handle: Handle,
    buf: Bytes,
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.buf.is_empty() {
                let n = out.len().min(self.buf.len());
                let (Some(to), Some(from)) = (out.get_mut(..n), self.buf.get(..n)) else {
                    return Ok(0);
                };
                to.copy_from_slice(from);
                self.buf = self.buf.slice(n..);
                return Ok(n);
            }
            match self.handle.block_on(self.body.next()) {
                Ok(Some(b)) => self.buf = b,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
    }
}

/// An S3 client for archives: path-style addresses when an endpoint is configured
/// (`AWS_ENDPOINT_URL`: moto, MinIO and other S3-compatible stores answer there; S3 itself is
/// addressed virtual-host style).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
