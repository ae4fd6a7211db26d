"""Benchmark: ``%%emr_spark -o`` against sparkmagic's ``%%spark -o`` on the same Livy session.

Starts the local backend and one session with ``%emr_session start`` in an IPython shell with
sparkmagic loaded (the session is registered with sparkmagic, so both magics use it). For each
size it caches a DataFrame of N rows x 5 columns (bigint, double, string, timestamp, boolean) on
the session, then brings it back with both magics, alternating, ``--repeat`` times each, and
reports the median wall time of each and the ratio. Exits 1 when ``%%emr_spark -o`` is less than
3x faster than sparkmagic at 100,000 rows (when that size is measured).

    python benchmarks/results_o.py [--sizes 10000,100000,1000000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time

from demo_world import demo_world

BAR_ROWS = 100_000
BAR_RATIO = 3.0
COLUMNS = [
    "id AS n",
    "CAST(id AS DOUBLE) / 7 AS x",
    "CONCAT('row-', id) AS s",
    "TIMESTAMP'2024-01-01 00:00:00 UTC' + make_interval(0, 0, 0, 0, 0, 0, id) AS t",
    "id % 2 = 0 AS b",
]


def timed(ip, cell: str, name: str | None = None) -> float | None:
    """The cell's wall time; None when it left no ``name`` behind (sparkmagic prints its
    errors instead of failing the cell)."""
    if name:
        ip.user_ns.pop(name, None)
    shown = io.StringIO()
    began = time.perf_counter()
    with contextlib.redirect_stdout(shown), contextlib.redirect_stderr(shown):
        result = ip.run_cell(cell)
    wall = time.perf_counter() - began
    if not result.success:
        raise SystemExit(f"the cell failed: {result.error_in_exec or result.error_before_exec!r}")
    if name and name not in ip.user_ns:
        print(
            f"{cell.splitlines()[0]}: no result: {shown.getvalue().strip()[-300:]}", file=sys.stderr
        )
        return None
    return wall


def median(times: list[float | None]) -> float | None:
    return None if None in times else statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    from IPython.core.interactiveshell import InteractiveShell

    rows = []
    with demo_world() as (_, app_id, role):
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "emr_cmk_notebook")
        ip.run_line_magic("load_ext", "sparkmagic.magics")
        start = f"start --application-id {app_id} --role {role} --key alias/emr-analytics"
        with contextlib.redirect_stdout(io.StringIO()):
            ip.run_line_magic("emr_session", start)
        try:
            for size in sizes:
                frame = f"bench_{size}"
                timed(
                    ip,
                    f"%%emr_spark\n{frame} = spark.range({size}).selectExpr("
                    f"*{COLUMNS!r}).cache()\n{frame}.count()",
                )
                ours, theirs = [], []
                for _ in range(args.repeat):
                    theirs.append(timed(ip, f"%%spark -o sm -n {size}\nsm = {frame}", "sm"))
                    ours.append(timed(ip, f"%%emr_spark -o emr -n {size}\n{frame}", "emr"))
                emr, sm = ip.user_ns.get("emr"), ip.user_ns.get("sm")
                for got in (emr, sm):
                    assert got is None or len(got) == size, (len(got), size)
                row = {"rows": size, "sparkmagic_s": median(theirs), "emr_spark_s": median(ours)}
                if row["sparkmagic_s"] and row["emr_spark_s"]:
                    row["ratio"] = row["sparkmagic_s"] / row["emr_spark_s"]
                row["emr_spark_t_dtype"] = None if emr is None else str(emr["t"].dtype)
                row["sparkmagic_t_dtype"] = None if sm is None else str(sm["t"].dtype)
                rows.append(row)
                timed(ip, f"%%emr_spark\n{frame}.unpersist()\ndel {frame}")
        finally:
            with contextlib.redirect_stdout(io.StringIO()):
                ip.run_line_magic("emr_session", "stop --all")
    if args.json:
        print(json.dumps({"repeat": args.repeat, "sizes": rows}, indent=2))
    else:
        print(f"{'rows':>9} {'sparkmagic s':>13} {'emr_spark s':>12} {'ratio':>7}  t dtype (ours)")
        for row in rows:
            print(
                f"{row['rows']:>9,} {_seconds(row['sparkmagic_s']):>13} "
                f"{_seconds(row['emr_spark_s']):>12} {_ratio(row.get('ratio')):>7}  "
                f"{row['emr_spark_t_dtype']}"
            )
    bar = [row for row in rows if row["rows"] == BAR_ROWS]
    return 0 if all(row.get("ratio", 0) >= BAR_RATIO for row in bar) else 1


def _seconds(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


if __name__ == "__main__":
    sys.exit(main())
