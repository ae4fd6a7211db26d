"""Benchmark: what ``%%emr_spark`` adds to a statement's own run time.

Starts the local backend and one session with ``%emr_session start`` in an IPython shell, then
runs ``%%emr_spark`` on a trivial statement many times. For each run: the cell's wall time minus
the statement's server-side run time (its ``completed - started``, from the Livy statement).
Exits 1 when the median overhead is 100 ms or more.

    python benchmarks/statement_overhead.py [--repeat N] [--json]
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

LIMIT_SECONDS = 0.100
WARMUP = 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from IPython.core.interactiveshell import InteractiveShell

    with demo_world() as (_, app_id, role):
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "emr_cmk_notebook")
        start = f"start --application-id {app_id} --role {role} --key alias/emr-analytics"
        info = ip.run_line_magic("emr_session", start)
        client = ip.magics_manager.registry["EmrCmk"].kernel().manager.livy_client(app_id)
        rows = []
        for run in range(WARMUP + args.repeat):
            began = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                result = ip.run_cell("%%emr_spark\n1 + 1")
            wall = time.perf_counter() - began
            if not result.success:
                print(f"the cell failed: {result.error_in_exec!r}", file=sys.stderr)
                return 1
            statement = client.statements(info.id, newest_first=True)[0]
            server = (statement["completed"] - statement["started"]) / 1000.0
            if run >= WARMUP:
                rows.append({"wall_s": wall, "server_s": server, "overhead_s": wall - server})
        ip.run_line_magic("emr_session", "stop --all")
    overheads = [r["overhead_s"] for r in rows]
    summary = {
        "repeat": args.repeat,
        "median_wall_s": statistics.median(r["wall_s"] for r in rows),
        "median_server_s": statistics.median(r["server_s"] for r in rows),
        "median_overhead_s": statistics.median(overheads),
        "p90_overhead_s": statistics.quantiles(overheads, n=10)[-1],
        "limit_s": LIMIT_SECONDS,
    }
    if args.json:
        print(json.dumps({**summary, "runs": rows}, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:<20} {value:.4f}" if isinstance(value, float) else f"{key:<20} {value}")
    return 0 if summary["median_overhead_s"] < LIMIT_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
