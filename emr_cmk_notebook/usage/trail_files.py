"""Where CloudTrail log files are: one file, a folder laid out like a trail bucket, or ``s3://``.

A trail delivers to ``[PREFIX/]AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/FILE.json.gz``; an
organisation trail puts its organisation id first, ``AWSLogs/o-ORG/ACCOUNT/CloudTrail/...``.
A ``Scope`` (time window, accounts, regions) prunes folders by that layout before any file is
listed or read: a day folder outside the window, another account's or region's folder, and the
``CloudTrail-Digest`` and ``CloudTrail-Insight`` folders are never opened. Folders that are not
part of the layout are read whole.

A file is delivered minutes after its newest record (CloudTrail: about every 5 minutes), so the
folder of the day after the window's end is read too: a record of 23:58 may sit in the next day's
folder. The rows themselves are filtered by time afterwards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.core.files import read_bounded
from emr_cmk_notebook.usage.records import MAX_LOG_BYTES, too_large

LOGS_FOLDER = "AWSLogs"
LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")
_ACCOUNT = re.compile(r"^\d{12}$")
_ORGANIZATION = re.compile(r"^o-[a-z0-9]{10,32}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")


@dataclass(frozen=True)
class Scope:
    """What to read: a time window (UTC, both ends included), accounts and regions; None: all."""

    start: datetime | None = None
    end: datetime | None = None
    accounts: frozenset[str] | None = None
    regions: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        start: datetime | None = None,
        end: datetime | None = None,
        accounts: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
    ) -> Scope:
        """A scope from optional bounds; account ids and region names are checked here."""
        for account in accounts or ():
            if not _ACCOUNT.match(account):
                raise UserError(f"--account {account!r} is not a 12-digit account id")
        for region in regions or ():
            if not _REGION.match(region):
                raise UserError(f"--region {region!r} is not a region name, e.g. us-east-1")
        if start and end and start > end:
            raise UserError(f"--since {start:%Y-%m-%dT%H:%M:%SZ} is after --until")
        return cls(
            start,
            end,
            frozenset(accounts) if accounts else None,
            frozenset(regions) if regions else None,
        )

    def keeps(self, parts: Sequence[str]) -> bool:
        """Whether a folder (its names after ``AWSLogs``) can hold records in this scope."""
        fields = _without_organization(parts)
        checks: list[Callable[[str], bool]] = [
            lambda name: (
                bool(_ACCOUNT.match(name)) and (self.accounts is None or name in self.accounts)
            ),
            lambda name: name == "CloudTrail",
            lambda name: self.regions is None or name in self.regions,
        ]
        for check, name in zip(checks, fields, strict=False):
            if not check(name):
                return False
        return self.keeps_days(fields[3:6])

    def keeps_days(self, parts: Sequence[str]) -> bool:
        """Whether a ``YYYY[/MM[/DD]]`` folder can hold records of the window."""
        if not parts:
            return True
        if not all(part.isdigit() for part in parts):
            return False
        year, month, day = ([int(part) for part in parts] + [0, 0])[:3]
        try:
            first = date(year, month or 1, day or 1)
        except ValueError:
            return False
        if day:
            last = first
        elif month:
            last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        else:
            last = date(year, 12, 31)
        if self.start is not None and last < self.start.astimezone(UTC).date():
            return False
        # A file lands in its delivery day's folder, minutes after its newest record.
        return self.end is None or first <= self.end.astimezone(UTC).date() + timedelta(days=1)


def _without_organization(parts: Sequence[str]) -> list[str]:
    fields = list(parts)
    return fields[1:] if fields and _ORGANIZATION.match(fields[0]) else fields


@dataclass(frozen=True)
class LogFile:
    """One CloudTrail log file: its name (path or URL) and how to read its bytes."""

    name: str
    read: Callable[[], bytes]


def is_s3_url(path: str | os.PathLike[str]) -> bool:
    """True for ``s3://...`` text."""
    return str(path).startswith("s3://")


def bucket_of(url: str) -> str:
    """The bucket of an ``s3://BUCKET/PREFIX`` URL; anything else is a one-line error."""
    match = _S3_URL.match(url)
    if not match:
        raise UserError(f"{url}: not an s3://BUCKET/PREFIX URL")
    return match.group(1)


def list_log_files(
    path: str | os.PathLike[str], scope: Scope | None = None, *, s3: Any = None
) -> list[LogFile]:
    """The log files at ``path`` that the scope keeps, in path order (a folder in layout order).

    ``s3`` is a boto3 S3 client, needed for an ``s3://`` path. A path that names nothing, or a
    folder or prefix without log files, is a one-line error.
    """
    scope = scope or Scope()
    if is_s3_url(path):
        if s3 is None:
            raise UserError(f"{path}: reading s3:// needs AWS access")
        return _s3_files(str(path), scope, s3)
    root = Path(path)
    if not root.exists():
        raise UserError(f"{root}: no such file or folder")
    if not root.is_dir():
        # A file, or anything else that reads like one (a pipe, a device): its reader judges it.
        return [_local_file(root)]
    files = list(_walk(root, _layout_parts(root.absolute().parts), scope))
    if not files and not _any_log_file(root):
        raise UserError(
            f"{root}: no CloudTrail files (*.json, *.json.gz, *.jsonl) in it",
            hint="give a log file, a trail folder (with AWSLogs/ in it) or s3://BUCKET/PREFIX",
        )
    return files


def read_local(path: Path) -> bytes:
    """The bytes of a local log file; a missing or unreadable file is a one-line error."""
    try:
        return read_bounded(path, MAX_LOG_BYTES, too_large(str(path)))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a CloudTrail log file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the file ({exc.strerror})") from None


def _local_file(path: Path) -> LogFile:
    return LogFile(str(path), lambda: read_local(path))


def _layout_parts(parts: Sequence[str]) -> list[str] | None:
    """The names after the last ``AWSLogs`` in ``parts``; None when not inside the layout."""
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] == LOGS_FOLDER:
            return list(parts[index + 1 :])
    return None


def _is_log_name(name: str) -> bool:
    return name.endswith(LOG_SUFFIXES) and not name.startswith(".")


def _walk(folder: Path, layout: list[str] | None, scope: Scope) -> Iterator[LogFile]:
    if layout is not None and not scope.keeps(layout):
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        raise UserError(f"{folder}: cannot list the folder ({exc.strerror})") from None
    for entry in entries:
        if entry.is_file() and _is_log_name(entry.name):
            yield _local_file(Path(entry.path))
    for entry in entries:
        if entry.is_dir():
            inner = [] if entry.name == LOGS_FOLDER else _deeper(layout, entry.name)
            yield from _walk(Path(entry.path), inner, scope)


def _deeper(layout: list[str] | None, name: str) -> list[str] | None:
    return None if layout is None else [*layout, name]


def _any_log_file(root: Path) -> bool:
    return any(_is_log_name(p.name) for p in root.rglob("*") if p.is_file())


def _s3_files(url: str, scope: Scope, s3: Any) -> list[LogFile]:
    bucket = bucket_of(url)
    prefix = url[len(f"s3://{bucket}/") :]
    if prefix and not prefix.endswith("/") and not _is_log_name(prefix):
        prefix += "/"
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if _is_log_name(prefix):
            s3.head_object(Bucket=bucket, Key=prefix)
            return [_s3_file(s3, bucket, prefix)]
        files = list(_s3_walk(s3, bucket, prefix, _layout_parts(prefix.split("/")[:-1]), scope))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise UserError(
            f"{url}: S3 refused the listing: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise UserError(f"{url}: S3 could not be reached: {exc}") from None
    if not files and scope == Scope():
        raise UserError(f"{url}: no CloudTrail files (*.json, *.json.gz, *.jsonl) under it")
    return files


def _s3_walk(
    s3: Any, bucket: str, prefix: str, layout: list[str] | None, scope: Scope
) -> Iterator[LogFile]:
    if layout is not None and not scope.keeps(layout):
        return
    if layout is not None and len(_without_organization(layout)) == 3:
        yield from _s3_days(s3, bucket, prefix, scope)
        return
    folders: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    ):
        folders += [entry["Prefix"] for entry in page.get("CommonPrefixes", [])]
        for item in page.get("Contents", []):
            if _is_log_name(item["Key"].rsplit("/", 1)[-1]):
                yield _s3_file(s3, bucket, item["Key"])
    for folder in sorted(folders):
        name = folder[len(prefix) :].rstrip("/")
        inner = [] if name == LOGS_FOLDER else _deeper(layout, name)
        yield from _s3_walk(s3, bucket, folder, inner, scope)


def _s3_days(s3: Any, bucket: str, prefix: str, scope: Scope) -> Iterator[LogFile]:
    """The files of a region folder's day folders in the window, in one paginated listing
    (one call per 1,000 files) that starts at the first day and stops after the last."""
    options = {"Bucket": bucket, "Prefix": prefix}
    if scope.start is not None:
        options["StartAfter"] = f"{prefix}{scope.start.astimezone(UTC):%Y/%m/%d}"
    for page in s3.get_paginator("list_objects_v2").paginate(**options):
        for item in page.get("Contents", []):
            parts = item["Key"][len(prefix) :].split("/")
            if len(parts) != 4 or not _is_log_name(parts[3]):
                continue
            if not scope.keeps_days(parts[:3]):
                if scope.end is not None and parts[:3] > _day_parts(scope.end + timedelta(days=1)):
                    return
                continue
            yield _s3_file(s3, bucket, item["Key"])


def _day_parts(moment: datetime) -> list[str]:
    return moment.astimezone(UTC).strftime("%Y/%m/%d").split("/")


def _s3_file(s3: Any, bucket: str, key: str) -> LogFile:
    def read() -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            data = body.read(MAX_LOG_BYTES + 1)
            body.close()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise UserError(
                f"s3://{bucket}/{key}: S3 refused the read: {error.get('Code')}:"
                f" {error.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise UserError(f"s3://{bucket}/{key}: S3 could not be reached: {exc}") from None
        if len(data) > MAX_LOG_BYTES:
            raise UserError(too_large(f"s3://{bucket}/{key}"))
        return data

    return LogFile(f"s3://{bucket}/{key}", read)
