"""DuckDB yardstick for the replay benchmark: read_json_auto over the same CloudTrail archive,
every record unnested and filtered to SSM calls (the scan and filter replay does before it
decides anything), with a given number of threads.

    python bench/duckdb_baseline.py ARCHIVE_DIR THREADS

Prints the SSM record count, records scanned and records/s. DuckDB comes from PyPI
(`pip install duckdb`; bench/run.sh installs it in target/bench-venv).
"""

import sys
import time

import duckdb


def main() -> None:
    archive, threads = sys.argv[1], int(sys.argv[2])
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    files = f"{archive}/**/*.json.gz"
    started = time.perf_counter()
    total, ssm = con.execute(
        f"""
        SELECT count(*), count(*) FILTER (WHERE r.eventSource = 'ssm.amazonaws.com')
        FROM (SELECT unnest(Records) AS r
              FROM read_json_auto('{files}', format = 'auto', maximum_object_size = 1073741824))
        """
    ).fetchone()
    elapsed = time.perf_counter() - started
    print(
        f"duckdb read_json_auto, {threads} thread(s): {total} records ({ssm} SSM) "
        f"in {elapsed:.2f} s = {total / elapsed:,.0f} records/s"
    )


if __name__ == "__main__":
    main()
