//! `tagwatch replay s3://bucket/prefix/` (the `aws` feature): the archive's selected objects
//! listed by CloudTrail's layout, then fetched ahead with bounded concurrency and read by the
//! same reading threads as local files. Credentials, region and endpoint come from the
//! standard AWS environment.

use std::io::Read;

use tagwatch_aws::archive::{self, Object, Plan, ReadAhead, S3Archive};
use tagwatch_core::archive::Selection;

use crate::input::InputError;

/// The first bytes of each object fetched ahead of its reader (the rest streams as it is
/// read): 1 MiB holds most CloudTrail log files whole.
const HEAD_BYTES: usize = 1024 * 1024;

/// S3 inputs: listed first, then fetched while the replay reads.
pub struct S3Inputs {
    runtime: tokio::runtime::Runtime,
    archive: S3Archive,
    concurrency: usize,
    objects: Vec<Object>,
    ahead: Option<ReadAhead>,
}

impl S3Inputs {
    /// `concurrency`: listings and object fetches at once.
    pub fn new(concurrency: usize) -> Result<Self, InputError> {
        // Reading threads block on this runtime's handle while its workers drive the fetches.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(InputError::AwsRuntime)?;
        let sdk = runtime.block_on(tagwatch_aws::load_config());
        Ok(S3Inputs {
            archive: S3Archive::new(archive::s3_client(&sdk), concurrency),
            runtime,
            concurrency: concurrency.max(1),
            objects: Vec::new(),
            ahead: None,
        })
    }

    /// Lists `url`'s selected objects (in key order) and returns their input numbers; says on
    /// stderr what was found and passed over.
    pub fn add(
        &mut self,
        url: &str,
        bucket: &str,
        prefix: &str,
        selection: &Selection,
    ) -> Result<Vec<usize>, InputError> {
        let archive = &self.archive;
        let (plan, listing) = self
            .runtime
            .block_on(async {
                let plan = archive.plan(bucket, prefix, selection).await?;
                let listing = archive.listing(bucket, &plan, selection).await?;
                Ok::<_, tagwatch_aws::AdapterError>((plan, listing))
            })
            .map_err(|e| InputError::S3 {
                url: url.to_string(),
                source: e,
            })?;
        let bytes: u64 = listing.objects.iter().map(|o| o.size).sum();
        let shape = match &plan {
            Plan::Days(days) => format!(
                "in {} day folder{} of the CloudTrail layout",
                days.len(),
                if days.len() == 1 { "" } else { "s" }
            ),
            Plan::Flat { .. } => "under a prefix without the CloudTrail layout".to_string(),
        };
        let mut passed = Vec::new();
        if listing.not_events > 0 {
            passed.push(format!("{} digest or Insights files", listing.not_events));
        }
        if listing.not_selected > 0 {
            passed.push(format!("{} not selected", listing.not_selected));
        }
        let passed = if passed.is_empty() {
            String::new()
        } else {
            format!("; passed over {}", passed.join(", "))
        };
        eprintln!(
            "{url}: {} object{} ({bytes} bytes) {shape}{passed}",
            listing.objects.len(),
            if listing.objects.len() == 1 { "" } else { "s" },
        );
        let first = self.objects.len();
        self.objects.extend(listing.objects);
        Ok((first..self.objects.len()).collect())
    }

    pub fn object(&self, i: usize) -> Option<&Object> {
        self.objects.get(i)
    }

    /// Starts fetching every listed object, in order.
    pub fn start(&mut self) {
        if self.ahead.is_none() && !self.objects.is_empty() {
            self.ahead = Some(ReadAhead::start(
                self.runtime.handle().clone(),
                self.archive.client().clone(),
                self.objects.clone(),
                self.concurrency,
                HEAD_BYTES,
            ));
        }
    }

    /// Object `i` as a reader (after [`S3Inputs::start`]).
    pub fn open(&self, i: usize) -> std::io::Result<Box<dyn Read>> {
        match &self.ahead {
            Some(ahead) => Ok(Box::new(ahead.open(i)?)),
            None => Err(std::io::Error::other("the S3 inputs were not started")),
        }
    }
}
