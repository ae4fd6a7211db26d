"""Readiness latency: a full key check against the local backend with 100 ms added to every call.

    .venv/bin/python benchmarks/readiness_latency.py             # 100 ms per call, best of 5
    .venv/bin/python benchmarks/readiness_latency.py --latency-ms 50 --repeat 3 --json

Times, in the same run: one AWS call (DescribeKey), the full check as shipped (concurrent calls),
and the same check with its calls made one by one. Exits 1 when the full check takes 3x one
call's latency or more.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from emr_cmk_notebook import local
from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.readiness import check_readiness
from emr_cmk_notebook.readiness.calls import client
from emr_cmk_notebook.readiness.checks import run_checks
from emr_cmk_notebook.readiness.gather import Inputs, gather

ROLE = "arn:aws:iam::111122223333:role/emr-session-role"
KEY = "alias/emr-analytics"


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ["EMR_CMK_HOME"] = tempfile.mkdtemp(prefix="emr-cmk-bench-")
    with local.start() as backend:
        os.environ.update(backend.env())
        apps = backend.status()["applications"]
        app_id = next(a["id"] for a in apps if a["name"] == "demo-app")
        target = AwsTarget(region=backend.region, endpoint_url=backend.endpoint)
        # Clients are made once and reused, as in a notebook; the timings are of the calls.
        report = check_readiness(KEY, app_id, ROLE, target=target)
        assert report.ready, report.to_text()
        backend.settings(faults={"latency_ms": args.latency_ms})
        kms = client(target, "kms")
        one = statistics.median(
            _best(lambda: kms.describe_key(KeyId=KEY), 1) for _ in range(args.repeat)
        )
        full = _best(lambda: check_readiness(KEY, app_id, ROLE, target=target), args.repeat)
        inputs = Inputs(KEY, app_id, ROLE, {}, backend.region)
        one_by_one = _best(lambda: run_checks(gather(inputs, target, workers=1)), args.repeat)
    result = {
        "latency_ms": args.latency_ms,
        "one_call_s": round(one, 4),
        "full_check_s": round(full, 4),
        "sequential_check_s": round(one_by_one, 4),
        "full_over_one_call": round(full / one, 2),
        "full_over_sequential": round(full / one_by_one, 3),
        "sequential_calls": round(one_by_one / one, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            print(f"{name:24} {value}")
    return 0 if full < 3 * one else 1


if __name__ == "__main__":
    sys.exit(main())
