"""LookupEvents harvest against the local backend: pace, failures, duplicates, cache.

    .venv/bin/python benchmarks/harvest.py                 # 3000 records, then 120 new
    .venv/bin/python benchmarks/harvest.py --records 1000 --json

Starts a private local backend (2 LookupEvents a second per account and region, as AWS),
fills CloudTrail with KMS calls on one key, then harvests them with ``KeyUsage.fetch`` three
times: cold; again after more calls (the cache must limit the calls to the new events); and
cold again while the backend throttles 10% of CloudTrail calls on top of the rate limit.
Exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LIMIT_TPS = 2.0
PAGE = 50


def generate(backend: Any, key: str, count: int, marker: str, threads: int = 4) -> None:
    """Make ``count`` GenerateDataKey calls on ``key``, each with the context ``run=marker``."""
    clients = [backend.client("kms") for _ in range(threads)]

    def work(worker: int) -> None:
        kms = clients[worker]
        for _ in range(worker, count, threads):
            kms.generate_data_key(
                KeyId=key, KeySpec="AES_256", EncryptionContext={"run": marker, "step": "gen"}
            )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))


def harvest(key: str, cache_home: Path) -> dict[str, Any]:
    """One ``KeyUsage.fetch`` from event history, with its costs and the frame's checks."""
    from emr_cmk_notebook.usage.key_usage import KeyUsage

    os.environ["EMR_CMK_HOME"] = str(cache_home)
    began = time.monotonic()
    usage = KeyUsage.fetch(key, since="1h", settle=0)
    seconds = time.monotonic() - began
    stats = usage.stats
    frame = usage.to_frame()
    # The first call goes out at once; each later one waits its turn, so the pace is
    # (calls - 1) over the time the harvest took.
    pace = (stats.calls - 1) / stats.seconds if stats.calls > 1 else 0.0
    return {
        "rows": len(frame),
        "calls": stats.calls,
        "throttled": stats.throttled,
        "failed": stats.failed,
        "new_events": stats.new_events,
        "duplicate_rows": int(len(frame) - frame["event_id"].nunique()),
        "duplicates_dropped": stats.duplicates_dropped,
        "harvest_seconds": round(stats.seconds, 2),
        "fetch_seconds": round(seconds, 2),
        "tps": round(pace, 3),
        "tps_ratio": round(pace / LIMIT_TPS, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000, help="KMS calls made first")
    parser.add_argument("--new", type=int, default=120, help="KMS calls made before run 2")
    parser.add_argument("--throttle-rate", type=float, default=0.1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="harvest-bench-"))
    os.environ["EMR_CMK_HOME"] = str(work / "home")
    from emr_cmk_notebook import local

    with local.start(seed="demo") as backend:
        os.environ.update(backend.env())
        status = backend.status()
        key = next(k["arn"] for k in status["keys"] if k["alias"] == "alias/emr-analytics")
        marker = uuid.uuid4().hex[:8]
        began = time.monotonic()
        generate(backend, key, args.records, marker)
        made = time.monotonic() - began

        cold = harvest(key, work / "cache-a")
        generate(backend, key, args.new, marker)
        warm = harvest(key, work / "cache-a")
        backend.settings(
            faults={"throttle_rate": args.throttle_rate, "services": ["cloudtrail"], "seed": 7}
        )
        throttled = harvest(key, work / "cache-b")
        backend.settings(faults={})

    expected_warm_calls = math.ceil(args.new / PAGE)
    figures = {
        "records": args.records,
        "new_records": args.new,
        "generate_seconds": round(made, 1),
        "cold": cold,
        "warm": warm,
        "warm_calls_expected": expected_warm_calls,
        "throttled_10pct": throttled,
    }
    bars = {
        "cold pace >= 90% of 2 TPS": cold["tps_ratio"] >= 0.9,
        "no failed calls": all(r["failed"] == 0 for r in (cold, warm, throttled)),
        "no duplicate rows": all(r["duplicate_rows"] == 0 for r in (cold, warm, throttled)),
        "all records found": cold["rows"] == args.records
        and warm["rows"] == args.records + args.new
        and throttled["rows"] == args.records + args.new,
        "repeat makes only the calls for new events": warm["calls"] <= expected_warm_calls
        and warm["new_events"] == args.new,
    }
    figures["bars"] = bars
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{args.records} KMS records made in {made:.1f} s, then {args.new} more")
        print(
            "run        rows  calls  throttled  failed  new  dup  seconds  TPS    TPS/2.0",
        )
        for name, run in (("cold", cold), ("warm", warm), ("throttled", throttled)):
            print(
                f"{name:<10} {run['rows']:>4}  {run['calls']:>5}  {run['throttled']:>9}"
                f"  {run['failed']:>6}  {run['new_events']:>4} {run['duplicate_rows']:>4}"
                f"  {run['harvest_seconds']:>7}  {run['tps']:<5}  {run['tps_ratio']}"
            )
        print(f"warm run: {warm['calls']} calls for {args.new} new events")
        for name, ok in bars.items():
            print(f"{'ok  ' if ok else 'MISS'} {name}")
    return 0 if all(bars.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
