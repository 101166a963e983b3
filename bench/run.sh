#!/usr/bin/env bash
# Replay benchmark: a generated CloudTrail archive of 1,000,000 records (2% SSM calls) through
# `tagwatch replay`, from .json.gz log files and from uncompressed JSON lines, with peak memory,
# and the same archive through a plain Python json.loads loop, and DuckDB's read_json_auto
# side by side with tagwatch (bench/side_by_side.py: the ratio at 1 thread and every core).
#   bash bench/run.sh [RECORDS]
# Each input is replayed with --jobs 1 and on every core (the findings are the same).
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
      --policy examples/intent.json --inventory examples/inventory.json "$@" >/dev/null
}
echo "tagwatch replay, .json.gz CloudTrail log files, --jobs 1:"
run --jobs 1 "$out/archive"
echo "tagwatch replay, .json.gz CloudTrail log files, every core (--jobs $(nproc)):"
run "$out/archive"
echo "tagwatch replay, uncompressed JSON lines, --jobs 1:"
run --jobs 1 "$out/records.jsonl"
echo "tagwatch replay, uncompressed JSON lines, every core:"
run "$out/records.jsonl"
echo "Python baseline:"
python3 bench/python_baseline.py "$out/archive"
python3 bench/python_baseline.py "$out/records.jsonl"
# DuckDB's read_json_auto scan and filter of the same .json.gz files, at the same thread counts.
if [ ! -x target/bench-venv/bin/python ] || ! target/bench-venv/bin/python -c "import duckdb" 2>/dev/null; then
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q "duckdb==2.0.1"
fi
echo "DuckDB yardstick, side by side with tagwatch replay (medians of 5 rounds, A B A B ...):"
python3 bench/side_by_side.py "$out/archive"
