//! Warm handling cost per event, excluding AWS calls: the CloudTrail watcher's pipeline (what
//! its handler runs) with the in-memory ports: parse the payload, normalise, gather, look up
//! tags, decide, stage, persist, deliver. Run with `cargo bench -p cloudtrail-watcher`.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark set-up on fixed inputs: a failure panics and stops the run"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tagwatch_lambda::fakes;
use tagwatch_lambda::pipeline::{watch, Accept};
use tagwatch_tests::{event_json, intent, inventory};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let intent = intent();
    let mut group = c.benchmark_group("cloudtrail-watcher");
    for (name, file) in [
        (
            "violation (2 instances)",
            "cloudtrail-sendcommand-instanceids.json",
        ),
        ("compliant session", "cloudtrail-startsession-allowed.json"),
        ("access denied", "cloudtrail-sendcommand-access-denied.json"),
    ] {
        let template = event_json(file);
        let id = template["detail"]["eventID"].as_str().unwrap().to_string();
        // SendCommand ids are unique per call too.
        let command = template["detail"]["responseElements"]["command"]["commandId"]
            .as_str()
            .map(str::to_string);
        let text = template.to_string();
        let ports = fakes::ports(inventory());
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                // A new event id each time (a first delivery, never a duplicate), parsed from
                // the payload text as the runtime does.
                n += 1;
                let mut payload = text.replace(&id, &format!("bench-{n:032}"));
                if let Some(c) = &command {
                    payload = payload.replace(c, &format!("cmd-{n:032}"));
                }
                let e: serde_json::Value = serde_json::from_str(&payload).unwrap();
                let out = rt.block_on(watch(
                    &ports,
                    &intent,
                    &fakes::invocation("cloudtrail-watcher"),
                    Accept::Activities,
                    &e,
                ));
                black_box(out.unwrap());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
