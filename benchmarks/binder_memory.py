"""Benchmark: each tutorial's peak memory as Binder runs it, against mybinder.org's 2 GB limit.

A Binder launch runs ``binder/start``: the local backend with the demo seed, detached, then the
notebook's kernel pointed at it. Spark runs under the backend (Livy sessions, job runs, Spark
Connect servers) and under the kernel. For every tutorial in ``notebooks/`` this runs
``binder/start emr-cmk notebook run NOTEBOOK`` with a fresh ``EMR_CMK_HOME`` and samples, every
``--every`` seconds, the summed resident memory (RSS) of the backend's and the runner's process
trees; the proportional set size (PSS, shared pages split between the processes that map them)
is shown next to it, closer to what the container's memory cgroup counts. Exits 1 when a
tutorial fails or its peak RSS reaches the limit.

    python benchmarks/binder_memory.py                          # every tutorial
    python benchmarks/binder_memory.py 01_quickstart.ipynb --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# mybinder.org's memory limit per user, in decimal megabytes to stay on the safe side.
LIMIT_MB = 2000
MB = 1_000_000


def tree(pid: int | None) -> list[psutil.Process]:
    """``pid`` and every process below it (none when it is gone)."""
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def memory(processes: list[psutil.Process]) -> dict[int, tuple[int, int]]:
    """RSS and PSS in bytes of each process still alive, by pid."""
    found = {}
    for process in processes:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found[process.pid] = (info.rss, info.pss)
    return found


def backend_pid(home: Path) -> int | None:
    """The pid of the backend ``binder/start`` left running under ``home``, once it answers."""
    from emr_cmk_notebook.local import process

    os.environ["EMR_CMK_HOME"] = str(home)
    backend = process.running()
    return None if backend is None else backend.pid


def run_tutorial(notebook: Path, every: float, timeout: float) -> dict:
    """Run one tutorial the Binder way and sample its memory until it ends."""
    with tempfile.TemporaryDirectory(prefix="binder-memory-") as work:
        home = Path(work) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(EMR_CMK_HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
        command = ["bash", "binder/start", "emr-cmk", "notebook", "run", str(notebook)]
        command += ["--output", str(Path(work) / notebook.name)]
        began = time.monotonic()
        log = Path(work) / "run.log"
        with log.open("wb") as sink:
            runner = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)
        peak = {"rss": 0, "pss": 0, "backend_rss": 0, "kernel_rss": 0, "processes": 0}
        backend = None
        try:
            while runner.poll() is None:
                if time.monotonic() - began > timeout:
                    runner.kill()
                    break
                backend = backend or backend_pid(home)
                mine = tree(backend)
                ours = {p.pid for p in mine}
                sample = memory([*mine, *(p for p in tree(runner.pid) if p.pid not in ours)])
                rss = sum(r for r, _ in sample.values())
                if rss > peak["rss"]:
                    peak = {
                        "rss": rss,
                        "pss": sum(p for _, p in sample.values()),
                        "backend_rss": sum(r for pid, (r, _) in sample.items() if pid in ours),
                        "kernel_rss": sum(r for pid, (r, _) in sample.items() if pid not in ours),
                        "processes": len(sample),
                    }
                time.sleep(every)
            runner.wait()
            output = log.read_text(errors="replace")
        finally:
            subprocess.run(
                [str(BIN / "emr-cmk"), "local", "stop"], env=env, capture_output=True, timeout=60
            )
    return {
        "notebook": notebook.name,
        "ok": runner.returncode == 0,
        "seconds": round(time.monotonic() - began, 1),
        "peak_rss_mb": round(peak["rss"] / MB),
        "peak_pss_mb": round(peak["pss"] / MB),
        "backend_rss_mb": round(peak["backend_rss"] / MB),
        "runner_rss_mb": round(peak["kernel_rss"] / MB),
        "processes": peak["processes"],
        "tail": "" if runner.returncode == 0 else output[-2000:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="tutorial names (default: all)")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between samples")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per tutorial")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = args.notebooks or sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    rows = []
    for name in names:
        row = run_tutorial(ROOT / "notebooks" / name, args.every, args.timeout)
        rows.append(row)
        if not args.json:
            print(
                f"{row['notebook']:<30} peak RSS {row['peak_rss_mb']:>5} MB"
                f" (PSS {row['peak_pss_mb']:>5} MB; backend {row['backend_rss_mb']:>5},"
                f" runner+kernel {row['runner_rss_mb']:>5}; {row['processes']:>2} processes)"
                f"  {row['seconds']:>6.1f} s  {'ok' if row['ok'] else 'FAILED'}",
                flush=True,
            )
            if not row["ok"]:
                print(row["tail"], file=sys.stderr)
    worst = max(row["peak_rss_mb"] for row in rows)
    if args.json:
        print(json.dumps({"limit_mb": LIMIT_MB, "tutorials": rows}, indent=2))
    else:
        print(f"highest peak RSS {worst} MB; mybinder.org allows {LIMIT_MB} MB")
    return 0 if all(row["ok"] for row in rows) and worst < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
