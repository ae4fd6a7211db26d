"""Benchmark: from a Livy session becoming idle on the server to ``start`` returning.

Starts the local backend with a Livy start delay (default 3 s), then starts sessions with
``SessionManager.start`` while a watcher thread lists the sessions every few milliseconds and
notes when the new one is first ``idle``. The gap between that moment and ``start`` returning is
what adaptive polling costs. Exits 1 when the median gap is 0.5 s or more.

    python benchmarks/session_start.py [--repeat N] [--start-delay S] [--json]
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

LIMIT_SECONDS = 0.5
WATCH_EVERY = 0.005


def watch(client, name: str, seen: dict[str, float], stop: threading.Event) -> None:
    """Note the first moment the session named ``name`` is listed as idle."""
    while not stop.is_set():
        for session in client.list_sessions():
            if session.get("name") == name and session.get("state") == "idle":
                seen["idle"] = time.monotonic()
                return
        time.sleep(WATCH_EVERY)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--start-delay", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.sessions import SessionManager
    from emr_cmk_notebook.sessions.livy import LivyClient

    with demo_world(livy_start_delay=args.start_delay) as (_, app_id, role):
        manager = SessionManager(AwsTarget(), cleanup_at_exit=False)
        watcher_client = LivyClient.for_application(AwsTarget(), app_id)
        rows = []
        for _ in range(args.repeat):
            name = f"bench-{uuid.uuid4().hex[:8]}"
            seen: dict[str, float] = {}
            stop = threading.Event()
            watcher = threading.Thread(target=watch, args=(watcher_client, name, seen, stop))
            began = time.monotonic()
            watcher.start()
            info = manager.start(app_id, role, key="alias/emr-analytics", name=name)
            returned = time.monotonic()
            stop.set()
            watcher.join()
            manager.stop(info.id)
            if "idle" not in seen:
                print("the watcher never saw the session idle", file=sys.stderr)
                return 1
            rows.append({"start_s": returned - began, "idle_to_return_s": returned - seen["idle"]})
    gaps = [r["idle_to_return_s"] for r in rows]
    summary = {
        "start_delay_s": args.start_delay,
        "repeat": args.repeat,
        "median_idle_to_return_s": statistics.median(gaps),
        "max_idle_to_return_s": max(gaps),
        "median_start_s": statistics.median(r["start_s"] for r in rows),
        "limit_s": LIMIT_SECONDS,
    }
    if args.json:
        print(json.dumps({**summary, "runs": rows}, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:<26} {value:.3f}" if isinstance(value, float) else f"{key:<26} {value}")
    return 0 if summary["median_idle_to_return_s"] < LIMIT_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
