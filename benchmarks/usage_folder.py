"""Benchmark: the whole ``emr-cmk usage parse`` process against the naive pandas script.

Three workloads, each timed as a whole process (interpreter start, imports, reading, printing),
``emr-cmk usage parse PATH`` (its default table: headline and first 50 rows) against a script that
does what one writes by hand (``json.load`` each file, ``pd.json_normalize`` its records, concat,
keep the KMS rows, print the count, time range and first 50 rows), in the same run:

- ``folder``: 300 gzip log files of 1,000 records in a trail layout, 70% KMS, the rest S3 and STS
  calls, callers mostly assumed roles with ``sessionContext``; needs 6x and a peak under 1 GiB;
- ``file``: one ``{"Records": [...]}`` file of 200,000 shallow KMS records; needs 8x;
- ``large``: a folder of 3,000,000 records (3,000 files like the first workload's), our command
  only; its time and peak memory are reported.

The two commands alternate, and each counts its best wall time of ``--repeat`` runs. Next to
wall time, each reports its CPU time (user + system, every thread), which the load of other jobs
on the machine changes far less: ours runs on several threads, so on a busy machine its wall time
gains less from them than on an idle one. Peak memory is the child's ``ru_maxrss``, read by a
small wrapper process per run so that no other process counts. Exits 1 when a wall-time ratio or
the memory bound is missed.

    python benchmarks/usage_folder.py [--repeat N] [--only folder,file,large] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from usage_parse import (  # the record generator of the in-process benchmark
    WORKLOAD_ACCOUNT,
    _assumed_role,
    _kms_record,
    _other_record,
    _uuid,
)

FOLDER_FILES, FILE_RECORDS, LARGE_FILES = 300, 1_000, 3_000
SHALLOW_RECORDS = 200_000
NEEDED = {"folder": 6.0, "file": 8.0}
PEAK_LIMIT_MB = 1024
# Distinct files written for the large folder; the rest are copies under other day folders.
LARGE_DISTINCT = 50

NAIVE = """
import gzip, json, sys
from pathlib import Path
import pandas as pd

root = Path(sys.argv[1])
paths = [root] if root.is_file() else sorted(root.rglob("*.json*"))
frames = []
for path in paths:
    data = path.read_bytes()
    if data[:2] == b"\\x1f\\x8b":
        data = gzip.decompress(data)
    frames.append(pd.json_normalize(json.loads(data)["Records"]))
frame = pd.concat(frames, ignore_index=True)
kms = frame[frame["eventSource"] == "kms.amazonaws.com"]
print(len(kms), "KMS records;", kms["eventTime"].min(), "to", kms["eventTime"].max())
columns = ["eventTime", "eventName", "userIdentity.type", "userIdentity.arn",
           "userIdentity.invokedBy", "requestParameters.keyId", "errorCode"]
print(kms.head(50).reindex(columns=columns).to_string(index=False, na_rep="-"))
"""

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
seconds = time.perf_counter() - start
if done.returncode:
    sys.exit(done.stderr.decode())
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
"""


def _mixed_records(rng: random.Random, count: int, second: int) -> list[dict[str, Any]]:
    """``count`` records: 70% KMS, the rest S3 and STS, callers mostly assumed roles."""
    records = []
    for _ in range(count):
        second += rng.randrange(0, 2)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        if rng.random() < 0.7:
            record = _kms_record(rng, when)
            if record["userIdentity"]["type"] == "AWSService" and rng.random() < 0.5:
                # Caller-side calls as real trails have them: an assumed role with its session.
                record["userIdentity"] = _assumed_role(rng, "DataScientist", WORKLOAD_ACCOUNT)
        else:
            record = _other_record(rng, when)
        records.append(record)
    return records


def _trail_file(root: Path, account: str, region: str, when: int, index: int) -> Path:
    day = time.strftime("%Y/%m/%d", time.gmtime(when))
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(when))
    folder = root / "AWSLogs" / account / "CloudTrail" / region / day
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{account}_CloudTrail_{region}_{stamp}_{index:06d}.json.gz"


def write_folder(root: Path, files: int, distinct: int, seed: int = 11) -> int:
    """``files`` gzip log files of ``FILE_RECORDS`` records; ``distinct`` of them differ."""
    rng = random.Random(seed)
    second = 1_772_323_200  # 2026-03-01T00:00:00Z
    bodies: list[bytes] = []
    for index in range(files):
        if index < distinct:
            records = _mixed_records(rng, FILE_RECORDS, second)
            body = json.dumps({"Records": records}, separators=(",", ":")).encode()
            bodies.append(gzip.compress(body, compresslevel=6))
        second += 300  # a file per five minutes, as a trail delivers them
        path = _trail_file(root, WORKLOAD_ACCOUNT, "us-east-1", second, index)
        path.write_bytes(bodies[index % distinct])
    return files * FILE_RECORDS


def write_shallow_file(path: Path, count: int, seed: int = 13) -> int:
    """One Records file of ``count`` shallow KMS records (EMR Serverless disk calls)."""
    rng = random.Random(seed)
    second = 1_772_323_200
    key = f"arn:aws:kms:us-east-1:{WORKLOAD_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    records = []
    for _ in range(count):
        second += rng.randrange(0, 2)
        records.append(
            {
                "eventVersion": "1.11",
                "userIdentity": {"type": "AWSService", "invokedBy": "AWS Internal"},
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)),
                "eventSource": "kms.amazonaws.com",
                "eventName": rng.choice(("GenerateDataKey", "Decrypt")),
                "awsRegion": "us-east-1",
                "sourceIPAddress": "AWS Internal",
                "userAgent": "AWS Internal",
                "requestParameters": {
                    "keyId": key,
                    "encryptionContext": {"applicationId": f"00f{rng.randrange(6):03d}abcdefgh1"},
                },
                "eventID": _uuid(rng),
                "readOnly": True,
                "recipientAccountId": WORKLOAD_ACCOUNT,
            }
        )
    path.write_text(json.dumps({"Records": records}, separators=(",", ":")))
    return count


def _run(command: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True
    )
    seconds, cpu, peak = done.stdout.split()
    return {"seconds": float(seconds), "cpu_seconds": float(cpu), "peak_mb": float(peak)}


def _ours(path: Path) -> list[str]:
    return [sys.executable, "-m", "emr_cmk_notebook", "usage", "parse", str(path), "--quiet"]


def _naive(path: Path) -> list[str]:
    return [sys.executable, "-c", NAIVE, str(path)]


def measure(name: str, path: Path, records: int, repeat: int, naive: bool) -> dict[str, Any]:
    """Time our command and (unless ``naive`` is False) the naive script on ``path``."""
    result: dict[str, Any] = {"workload": name, "records": records}
    # Alternate the two so that load from other jobs falls on both alike.
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(_run(_ours(path)))
        if naive:
            theirs.append(_run(_naive(path)))
    result["ours"] = _summarise(ours)
    if naive:
        result["naive"] = _summarise(theirs)
        result["speedup"] = result["naive"]["seconds"] / result["ours"]["seconds"]
        result["cpu_ratio"] = result["naive"]["cpu_seconds"] / result["ours"]["cpu_seconds"]
    return result


def _summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    best = min(runs, key=lambda run: run["seconds"])
    return {
        "seconds": best["seconds"],
        "cpu_seconds": min(run["cpu_seconds"] for run in runs),
        "peak_mb": max(run["peak_mb"] for run in runs),
        "all_seconds": [round(run["seconds"], 2) for run in runs],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the chosen workloads; exit 1 when a needed ratio or the memory bound is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per command; the best counts")
    parser.add_argument("--only", default="folder,file,large", help="workloads to run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    wanted = args.only.split(",")
    results = []
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        if "folder" in wanted:
            count = write_folder(root / "folder", FOLDER_FILES, FOLDER_FILES)
            results.append(measure("folder", root / "folder", count, args.repeat, True))
        if "file" in wanted:
            count = write_shallow_file(root / "shallow.json", SHALLOW_RECORDS)
            results.append(measure("file", root / "shallow.json", count, args.repeat, True))
        if "large" in wanted:
            count = write_folder(root / "large", LARGE_FILES, LARGE_DISTINCT)
            results.append(measure("large", root / "large", count, 1, False))
    ok = True
    for result in results:
        needed = NEEDED.get(result["workload"])
        if needed is not None:
            result["needed"] = needed
            ok &= result["speedup"] >= needed
        if result["workload"] == "folder":
            ok &= result["ours"]["peak_mb"] < PEAK_LIMIT_MB
    if args.json:
        print(json.dumps({"results": results, "ok": ok}, indent=2))
    else:
        for result in results:
            _print(result)
        print("ok" if ok else "MISSED")
    return 0 if ok else 1


def _print(result: dict[str, Any]) -> None:
    ours = result["ours"]
    line = (
        f"{result['workload']:<7}{result['records']:>10,} records  ours {ours['seconds']:6.2f} s"
        f" (runs {ours['all_seconds']}, cpu {ours['cpu_seconds']:.2f} s)"
        f" peak {ours['peak_mb']:5.0f} MB"
    )
    if "naive" in result:
        naive = result["naive"]
        line += (
            f"  naive {naive['seconds']:6.2f} s (runs {naive['all_seconds']},"
            f" cpu {naive['cpu_seconds']:.2f} s) peak {naive['peak_mb']:5.0f} MB"
            f"  {result['speedup']:.1f}x wall, {result['cpu_ratio']:.1f}x cpu"
            f" (needed {result['needed']:.0f}x)"
        )
    print(line)


if __name__ == "__main__":
    sys.exit(main())
