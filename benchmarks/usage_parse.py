"""Benchmark: CloudTrail KMS records to a typed DataFrame.

Compares ``parse_records`` (Arrow-based) with the usual
``pd.json_normalize([json.loads(s) for s in lines])`` on the same generated records, once as JSON
lines and once as a CloudTrail log file (``{"Records": [...]}``). Each method runs in its own
subprocess so that its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its
own. Exits 1 when ``parse_records`` is less than 10x faster than the baseline.

    python benchmarks/usage_parse.py [--records N] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REQUIRED_SPEEDUP = 10.0
WORKLOAD_ACCOUNT = "111122223333"
SECURITY_ACCOUNT = "444455556666"
REGIONS = ("us-east-1", "eu-west-1")
APPLICATIONS = tuple(f"00f{n:03d}abcdefgh{n:01d}" for n in range(6))
TEAMS = ("risk", "fraud", "pricing")
TABLES = ("Orders", "Payments", "Customers")
USER_AGENTS = (
    "Boto3/1.40.10 md/Botocore#1.40.10 ua/2.1 os/linux#6.8 lang/python#3.11.9",
    "aws-cli/2.27.4 md/awscrt#0.26.1 ua/2.1 os/macos#24.5.0 lang/python#3.13.3",
    "aws-sdk-java/2.31.9 md/io#sync md/http#Apache ua/2.1 os/Linux#5.10 lang/java#17.0.15",
)
ERRORS = (
    ("AccessDeniedException", "User is not authorized to perform: kms:Decrypt on this resource"),
    ("DisabledException", "The key is disabled."),
    ("KMSInvalidStateException", "The key is pending deletion."),
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _key_arn(region: str, index: int) -> str:
    owner = SECURITY_ACCOUNT if index == 0 else WORKLOAD_ACCOUNT
    return f"arn:aws:kms:{region}:{owner}:key/{index:08x}-12ab-34cd-56ef-1234567890ab"


def _assumed_role(rng: random.Random, role: str, account: str) -> dict[str, Any]:
    session = f"{role.lower()}-{rng.randrange(40)}"
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE{rng.randrange(10**6):06d}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": f"ASIAEXAMPLE{rng.randrange(10**8):08d}",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE000000",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2026-03-01T08:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def _kms_record(rng: random.Random, when: str) -> dict[str, Any]:
    region = rng.choice(REGIONS)
    key_index = rng.randrange(3)
    key_arn = _key_arn(region, key_index)
    name = "GenerateDataKey" if rng.random() < 0.6 else "Decrypt"
    params: dict[str, Any] = (
        {"keySpec": "AES_256"}
        if name == "GenerateDataKey"
        else {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    )
    kind = rng.random()
    source_ip = user_agent = "AWS Internal"
    if kind < 0.6:
        identity: dict[str, Any] = {"type": "AWSService", "invokedBy": "AWS Internal"}
        context = {"applicationId": rng.choice(APPLICATIONS)}
        if rng.random() < 0.5:
            context["team"] = rng.choice(TEAMS)
        params["keyId"] = key_arn
    elif kind < 0.85:
        identity = _assumed_role(
            rng, rng.choice(("DataScientist", "EmrJobRunner")), WORKLOAD_ACCOUNT
        )
        context = {"applicationId": rng.choice(APPLICATIONS)}
        if name == "GenerateDataKey":
            params["keyId"] = rng.choice(("alias/emr-disk", key_arn.rsplit("/", 1)[1], key_arn))
        source_ip = f"198.51.100.{rng.randrange(1, 255)}"
        user_agent = rng.choice(USER_AGENTS)
    elif kind < 0.93:
        identity = {"type": "AWSService", "invokedBy": "dynamodb.amazonaws.com"}
        context = {
            "aws:dynamodb:tableName": rng.choice(TABLES),
            "aws:dynamodb:subscriberId": WORKLOAD_ACCOUNT,
        }
        params["keyId"] = key_arn
        source_ip = user_agent = "dynamodb.amazonaws.com"
    else:
        identity = _assumed_role(rng, "Admin", WORKLOAD_ACCOUNT)
        identity["invokedBy"] = "secretsmanager.amazonaws.com"
        secret = rng.randrange(20)
        context = {
            "SecretARN": f"arn:aws:secretsmanager:{region}:{WORKLOAD_ACCOUNT}:secret:db-{secret}",
            "SecretVersionId": f"{secret:08d}-90ab-cdef-fedc-ba9876543210",
        }
        params["keyId"] = key_arn
        source_ip = user_agent = "secretsmanager.amazonaws.com"
    params["encryptionContext"] = context
    record: dict[str, Any] = {
        "eventVersion": "1.11",
        "userIdentity": identity,
        "eventTime": when,
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": params,
        "responseElements": None,
        "additionalEventData": {"keyMaterialId": f"{rng.getrandbits(256):064x}"},
        "requestID": _uuid(rng),
        "eventID": _uuid(rng),
        "readOnly": True,
        "resources": [
            {"accountId": key_arn.split(":")[4], "type": "AWS::KMS::Key", "ARN": key_arn}
        ],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": WORKLOAD_ACCOUNT,
        "eventCategory": "Management",
    }
    if key_index == 0:
        # The security account owns key 0: the call is logged in both accounts (sharedEventID).
        record["sharedEventID"] = _uuid(rng)
        record["recipientAccountId"] = SECURITY_ACCOUNT
    if rng.random() < 0.03:
        record["errorCode"], record["errorMessage"] = rng.choice(ERRORS)
    return record


def _other_record(rng: random.Random, when: str) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {
            "eventVersion": "1.09",
            "userIdentity": _assumed_role(rng, "DataScientist", WORKLOAD_ACCOUNT),
            "eventTime": when,
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7",
            "userAgent": USER_AGENTS[0],
            "requestParameters": {"bucketName": "lake", "key": "raw/part-0001.parquet"},
            "responseElements": None,
            "eventID": _uuid(rng),
            "readOnly": True,
            "resources": [
                {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::lake/raw/part-0001.parquet"}
            ],
            "eventType": "AwsApiCall",
            "recipientAccountId": WORKLOAD_ACCOUNT,
        }
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AWSService", "invokedBy": "emr-serverless.amazonaws.com"},
        "eventTime": when,
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRole",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "emr-serverless.amazonaws.com",
        "userAgent": "emr-serverless.amazonaws.com",
        "requestParameters": {"roleArn": f"arn:aws:iam::{WORKLOAD_ACCOUNT}:role/EmrJobRunner"},
        "responseElements": {"credentials": {"expiration": "Mar 1, 2026, 9:00:00 AM"}},
        "eventID": _uuid(rng),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": WORKLOAD_ACCOUNT,
    }


def generate_records(kms_records: int, seed: int = 7) -> list[dict[str, Any]]:
    """``kms_records`` KMS records plus about 1% other records, the same for the same seed."""
    rng = random.Random(seed)
    second = 1_772_323_200  # 2026-03-01T00:00:00Z
    records: list[dict[str, Any]] = []
    kms = 0
    while kms < kms_records:
        second += rng.randrange(0, 3)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        if rng.random() < 0.01:
            records.append(_other_record(rng, when))
        else:
            records.append(_kms_record(rng, when))
            kms += 1
    return records


def _baseline(data: bytes) -> int:
    import pandas as pd

    return len(pd.json_normalize([json.loads(s) for s in data.splitlines()]))


def _parse_records(data: bytes) -> int:
    from emr_cmk_notebook.usage import parse_records

    return parse_records(data).kms_records


METHODS = {"baseline": _baseline, "parse_records": _parse_records}


def _worker(method: str, path: str, repeat: int) -> None:
    """Time one method on one input file; print seconds (best of ``repeat``) and memory as JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    run = METHODS[method]
    data = Path(path).read_bytes()
    run(data[: data.find(b"\n") + 1] if method == "baseline" else b"")  # imports, outside the clock
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best, rows = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = run(data)
        best = min(best, time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux.
    print(
        json.dumps({"seconds": best, "rows": rows, "peak_mb": peak / 1024, "start_mb": base / 1024})
    )


def _write_inputs(folder: str, kms_records: int, seed: int) -> None:
    """Write the records as JSON lines and as a CloudTrail log file; print how many as JSON."""
    lines = [json.dumps(r, separators=(",", ":")) for r in generate_records(kms_records, seed)]
    Path(folder, "records.jsonl").write_text("\n".join(lines) + "\n")
    Path(folder, "records.json").write_text('{"Records":[' + ",".join(lines) + "]}")
    print(json.dumps({"all_records": len(lines)}))


def _subprocess(*args: str) -> dict[str, Any]:
    # A fresh interpreter per step: ru_maxrss survives exec, so the parent must stay small.
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def _measure(method: str, path: Path, repeat: int) -> dict[str, Any]:
    result = _subprocess("--worker", method, "--input", str(path), "--repeat", str(repeat))
    return {"method": method, "input": path.name, **result}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when parse_records is under the required speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="KMS records to generate")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the best counts")
    parser.add_argument("--seed", type=int, default=7, help="seed of the record generator")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--worker", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--write-inputs", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.input, args.repeat)
        return 0
    if args.write_inputs:
        _write_inputs(args.write_inputs, args.records, args.seed)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        written = _subprocess(
            "--write-inputs", folder, "--records", str(args.records), "--seed", str(args.seed)
        )
        json_lines, trail = Path(folder, "records.jsonl"), Path(folder, "records.json")
        size_mb = json_lines.stat().st_size / 2**20
        runs = [
            _measure("baseline", json_lines, args.repeat),
            _measure("parse_records", json_lines, args.repeat),
            _measure("parse_records", trail, args.repeat),
        ]
    baseline = runs[0]["seconds"]
    for run in runs:
        run["speedup"] = baseline / run["seconds"]
    slowest = min(run["speedup"] for run in runs[1:])
    result = {
        "kms_records": args.records,
        "all_records": written["all_records"],
        "input_mb": round(size_mb, 1),
        "repeat": args.repeat,
        "runs": runs,
        "required_speedup": REQUIRED_SPEEDUP,
        "ok": slowest >= REQUIRED_SPEEDUP,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0 if result["ok"] else 1


def _print(result: dict[str, Any]) -> None:
    print(
        f"{result['kms_records']} KMS records ({result['all_records']} in all, "
        f"{result['input_mb']} MB as JSON lines), best of {result['repeat']}"
    )
    print(
        f"{'method':<15}{'input':<16}{'seconds':>9}{'speed-up':>10}{'peak MB':>9}{'start MB':>10}"
    )
    for run in result["runs"]:
        print(
            f"{run['method']:<15}{run['input']:<16}{run['seconds']:>9.2f}"
            f"{run['speedup']:>9.1f}x{run['peak_mb']:>9.0f}{run['start_mb']:>10.0f}"
        )
    verdict = "ok" if result["ok"] else "TOO SLOW"
    print(f"required: {result['required_speedup']:.0f}x on every input: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
