#!/usr/bin/env bash
# Replay benchmark: a generated CloudTrail archive of 1,000,000 records (2% SSM calls) through
# `tagwatch replay`, from .json.gz log files and from uncompressed JSON lines, with peak memory,
# and the same archive through a plain Python json.loads loop for comparison.
#   bash bench/run.sh [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
out="target/bench-archive-$records"
# Replay's path uses no AWS call (only --inventory-from-aws does, behind the default `aws`
# feature), so the CLI is built without the AWS SDK: the same replay code, a much shorter build.
cargo build --release -q -p tagwatch --no-default-features
if [ ! -f "$out/records.jsonl" ]; then
  python3 bench/gen_cloudtrail.py --records "$records" --out "$out"
fi
run() {
  /usr/bin/time -f "  peak memory %M KB, wall %e s" \
    target/release/tagwatch replay --correlation-window 900 \
      --policy examples/intent.json --inventory examples/inventory.json "$1" >/dev/null
}
echo "tagwatch replay, .json.gz CloudTrail log files:"
run "$out/archive"
echo "tagwatch replay, uncompressed JSON lines:"
run "$out/records.jsonl"
echo "Python baseline:"
python3 bench/python_baseline.py "$out/archive"
python3 bench/python_baseline.py "$out/records.jsonl"
