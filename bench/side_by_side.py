"""tagwatch replay against DuckDB's read_json_auto scan-and-filter, side by side in one run.

    python3 bench/side_by_side.py ARCHIVE_DIR [--rounds N] [--threads 1,2]

For each thread count, runs `tagwatch replay --jobs T` and `duckdb_baseline.py ARCHIVE T` in
turn (A B A B ...), N rounds after one warm-up each, and prints each side's median wall time and
peak memory (the process's own maximum resident set, from wait4), the median of the pair-by-pair
ratios DuckDB/tagwatch, and tagwatch's speed-up from --jobs 1 to each thread count. tagwatch is
target/release/tagwatch (bench/run.sh builds it); DuckDB runs in target/bench-venv.
"""

import argparse
import os
import statistics
import subprocess
import time

TAGWATCH = "target/release/tagwatch"
DUCKDB_PYTHON = "target/bench-venv/bin/python"


def run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one run, its output thrown away."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("archive")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}")
    args = parser.parse_args()
    threads = sorted({int(t) for t in args.threads.split(",")})

    def tagwatch(t: int) -> list[str]:
        return [TAGWATCH, "replay", "--correlation-window", "900",
                "--policy", "examples/intent.json", "--inventory", "examples/inventory.json",
                "--jobs", str(t), args.archive]

    def duckdb(t: int) -> list[str]:
        return [DUCKDB_PYTHON, "bench/duckdb_baseline.py", args.archive, str(t)]

    medians = {}
    print(f"{'threads':>7} {'tagwatch s':>10} {'MiB':>6} {'DuckDB s':>9} {'MiB':>6} {'DuckDB/tagwatch':>16}")
    for t in threads:
        run(tagwatch(t))
        run(duckdb(t))
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(run(tagwatch(t)))
            theirs.append(run(duckdb(t)))
        ratio = statistics.median(b[0] / a[0] for a, b in zip(ours, theirs))
        wall = statistics.median(a[0] for a in ours)
        medians[t] = wall
        print(f"{t:>7} {wall:>10.2f} {max(a[1] for a in ours):>6.0f} "
              f"{statistics.median(b[0] for b in theirs):>9.2f} {max(b[1] for b in theirs):>6.0f} "
              f"{ratio:>15.1f}x")
    if 1 in medians:
        for t in threads:
            if t != 1:
                print(f"tagwatch --jobs {t} against --jobs 1: {medians[1] / medians[t]:.2f}x")


if __name__ == "__main__":
    main()
