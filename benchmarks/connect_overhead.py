"""Benchmark: what the project's Spark Connect handling costs per query, and after start.

Starts one Spark Connect session on the local backend with ``SessionManager.start``, then runs
the same small query through two clients of that session, alternating: the project's
``spark`` (token read for every call, renewed before expiry, session-aware retries) and a plain
pyspark client built from the same ``sc://`` URL (the baseline). Reports the median latency of
each and their ratio. It also reports the gap between the session first being listed STARTED on
the server and ``start`` returning (endpoint, token, connect, version check).
Exits 1 when the ratio is 1.2 or more.

    python benchmarks/connect_overhead.py [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid

from demo_world import demo_world

RATIO_LIMIT = 1.2
WATCH_EVERY = 0.005


def watch(emr, app_id: str, name: str, seen: dict[str, float], stop: threading.Event) -> None:
    """Note the first moment the session named ``name`` is listed STARTED or IDLE."""
    while not stop.is_set():
        for session in emr.list_sessions(applicationId=app_id)["sessions"]:
            if session.get("name") == name and session["state"] in ("STARTED", "IDLE"):
                seen["ready"] = time.monotonic()
                return
        time.sleep(WATCH_EVERY)


def timed(run) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from pyspark.sql.connect.session import SparkSession

    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.sessions import SessionManager
    from emr_cmk_notebook.sessions.connect_token import connect_url

    with demo_world() as (backend, app_id, role):
        emr = backend.client("emr-serverless")
        manager = SessionManager(AwsTarget(), cleanup_at_exit=False)
        name = f"bench-{uuid.uuid4().hex[:8]}"
        seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(emr, app_id, name, seen, stop))
        watcher.start()
        try:
            info = manager.start(app_id, role, name=name, transport="connect", timeout=300)
            returned = time.monotonic()
        finally:
            stop.set()
            watcher.join()
        try:
            ours = manager.connect_session(info.id).spark
            endpoint = emr.get_session_endpoint(applicationId=app_id, sessionId=info.id)
            plain = SparkSession.builder.remote(
                connect_url(endpoint["endpoint"], endpoint["authToken"])
            ).create()
            query = "SELECT count(*) FROM range(1000)"
            for spark in (ours, plain):  # warm both up
                spark.sql(query).collect()
            ours_s, plain_s = [], []
            for _ in range(args.repeat):
                ours_s.append(timed(lambda: ours.sql(query).collect()))
                plain_s.append(timed(lambda: plain.sql(query).collect()))
            plain.stop()
        finally:
            manager.stop(info.id)
    summary = {
        "repeat": args.repeat,
        "ready_to_return_s": returned - seen["ready"] if "ready" in seen else float("nan"),
        "median_query_ours_s": statistics.median(ours_s),
        "median_query_plain_s": statistics.median(plain_s),
        "ratio": statistics.median(ours_s) / statistics.median(plain_s),
        "ratio_limit": RATIO_LIMIT,
    }
    if args.json:
        print(json.dumps({**summary, "ours_s": ours_s, "plain_s": plain_s}, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:<22} {value:.4f}" if isinstance(value, float) else f"{key:<22} {value}")
    return 0 if summary["ratio"] < RATIO_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
