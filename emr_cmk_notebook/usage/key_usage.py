"""``KeyUsage``: who used a KMS key, when, for which application and session.

    usage = KeyUsage.fetch("alias/emr-analytics", since="7d")
    usage.to_frame(); usage.summary(); usage.findings(); usage.timeline()

Three sources give the same frame: ``lookup`` (CloudTrail event history, the last 90 days),
``athena`` (the trail's S3 logs; an ``s3://`` path runs on Athena, a local folder or the local
backend's delivered logs run the same SQL with DuckDB) and ``files`` (CloudTrail files read
directly: a file or a folder of them).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from emr_cmk_notebook.clients import AwsTarget, service_endpoint
from emr_cmk_notebook.core.arns import KEY_ARN_PATTERN, parse_arn, quoted, role_arn_problem
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.usage import athena as sql
from emr_cmk_notebook.usage import harvest as lookup
from emr_cmk_notebook.usage.completeness import Completeness, history_gaps, trail_gaps
from emr_cmk_notebook.usage.frame import (
    CATEGORY_COLUMNS,
    UsageBatch,
    UsageFrame,
    frame_of,
    iso_time,
    iso_times,
    join_batches,
    parse_records,
)
from emr_cmk_notebook.usage.progress import ProgressFactory, harvest_bars
from emr_cmk_notebook.usage.stream import read_batches
from emr_cmk_notebook.usage.timeline import Timeline
from emr_cmk_notebook.usage.trail_files import (
    LogFile,
    Scope,
    bucket_of,
    is_s3_url,
    list_log_files,
)
from emr_cmk_notebook.usage.views import KernelSession, findings, join_shared_copies, summarize
from emr_cmk_notebook.usage.views import match_sessions as _match_sessions

SOURCES = ("lookup", "athena", "files")
DEFAULT_SINCE = "7d"
_SINCE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_KEY_ID = re.compile(r"^(mrk-)?[0-9a-fA-F-]{32,36}$|^mrk-[0-9a-f]{32}$")
_HTML_ROWS = 20


def parse_since(text: str) -> pd.Timedelta:
    """``30m``, ``12h``, ``7d`` or ``2w`` as a duration; anything else is a one-line error."""
    match = _SINCE.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise UserError(
            f"--since {text!r} is not a duration", hint="write a number and m, h, d or w, e.g. 7d"
        )
    return pd.Timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def since_moment(text: str, until: pd.Timestamp | None = None) -> pd.Timestamp:
    """``--since``: a duration back from ``until`` (default now), such as 7d, or a time."""
    if _SINCE.match(str(text)):
        return (until if until is not None else pd.Timestamp.now(tz="UTC").ceil("s")) - (
            parse_since(text)
        )
    return parse_moment(text, "since")


def parse_moment(value: Any, name: str) -> pd.Timestamp:
    """A point in time (ISO 8601 text, datetime or epoch seconds) as a UTC timestamp."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = pd.Timestamp(value, unit="s")
        else:
            moment = pd.Timestamp(value)
    except (ValueError, TypeError):
        moment = pd.NaT
    if pd.isna(moment):
        raise UserError(
            f"--{name} {value!r} is not a time", hint="use ISO 8601, e.g. 2026-03-01T08:00:00Z"
        )
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


@dataclass(frozen=True)
class TimeWindow:
    """The span of time asked about, in UTC, both ends included."""

    start: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def resolve(
        cls,
        since: str | None = None,
        start: Any = None,
        end: Any = None,
        now: pd.Timestamp | None = None,
    ) -> TimeWindow:
        """From ``since`` (up to now or ``end``), or from ``start`` and ``end``."""
        if since is not None and start is not None:
            raise UserError("give either --since or --start, not both")
        now = now if now is not None else pd.Timestamp.now(tz="UTC")
        last = parse_moment(end, "end") if end is not None else now.ceil("s")
        if start is not None:
            return cls(parse_moment(start, "start"), last)
        return cls(last - parse_since(since or DEFAULT_SINCE), last)

    @property
    def empty(self) -> bool:
        """True when the window holds no time at all (start not before end)."""
        return self.start >= self.end

    def epoch(self) -> tuple[int, int]:
        """The window as whole epoch seconds (start rounded down, end up)."""
        return (
            int(self.start.floor("s").timestamp()),
            int(self.end.ceil("s").timestamp()),
        )

    def __str__(self) -> str:
        return f"{iso_time(self.start)} to {iso_time(self.end)}"


@dataclass
class KeyUsage:
    """The KMS calls on one key in a time window, with views an auditor reads."""

    key: str
    key_arn: str | None
    window: TimeWindow
    source: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    stats: lookup.HarvestStats | None = None
    skipped_non_kms: int = 0
    skipped_malformed: int = 0
    expected_principals: tuple[str, ...] = ()
    expected_context: dict[str, str] = field(default_factory=dict)
    completeness: Completeness = field(default_factory=Completeness)

    @classmethod
    def fetch(
        cls,
        key: str,
        since: str | None = None,
        start: Any = None,
        end: Any = None,
        *,
        application_id: str | None = None,
        session: str | KernelSession | None = None,
        source: str = "lookup",
        path: str | Path | None = None,
        regions: Iterable[str] | None = None,
        owner_role_arn: str | None = None,
        target: AwsTarget | None = None,
        sessions: Iterable[Any] = (),
        expected_principals: Iterable[str] = (),
        expected_context: Mapping[str, str] | None = None,
        progress: Callable[[lookup.HarvestProgress], None] | None = None,
        progress_bar: ProgressFactory | None = None,
        cache: bool = True,
        settle: int = lookup.SETTLE_SECONDS,
        athena: Mapping[str, str] | None = None,
    ) -> KeyUsage:
        """Find every KMS call on ``key`` in the window, from the chosen ``source``.

        ``key`` is a key ARN, key id or alias. ``sessions`` are the sessions started from this
        kernel (``KernelSession`` or ``(id, application id, pairs)``), matched to rows in a
        ``session`` column; ``session`` keeps only one of them. ``owner_role_arn`` is a role
        in the key owner's account to read that account's copies of cross-account calls.
        ``athena`` holds ``database``, ``workgroup``, ``output_location`` and ``table`` for
        Athena on AWS. ``progress`` receives a ``HarvestProgress`` after each LookupEvents page;
        ``progress_bar`` makes progress bars (``tqdm``, or ``tqdm.notebook.tqdm``): one per
        account and region for a harvest, one over the files for ``files``.
        ``settle`` is how many seconds before a harvest the cache does not trust yet (event
        history lags); the local backend has no lag, so 0 is exact there.
        """
        if source not in SOURCES:
            raise UserError(f"--source {source!r} is not one of {', '.join(SOURCES)}")
        if not isinstance(key, str) or not key.strip():
            raise UserError("--key is empty; give a key ARN, key id or alias")
        key = key.strip()
        window = TimeWindow.resolve(since, start, end)
        known = [KernelSession.of(s) for s in sessions]
        wanted = _wanted_session(session, known)
        if wanted is not None and wanted not in known:
            known.append(wanted)
        target = target or AwsTarget()
        regions = list(regions) if regions else None
        problem = None if owner_role_arn is None else role_arn_problem(owner_role_arn)
        if problem:
            raise UserError(f"--owner-role-arn {quoted(owner_role_arn, 120)} {problem}")
        usage = cls(
            key,
            key if KEY_ARN_PATTERN.fullmatch(key) else None,
            window,
            source,
            parse_records([]).frame,
            expected_principals=tuple(expected_principals),
            expected_context=dict(expected_context or {}),
        )
        if window.empty:
            usage.notes.append(f"the window {window} is empty: its start is not before its end")
        elif source == "lookup":
            usage._from_lookup(
                target, regions, owner_role_arn, progress, progress_bar, cache, settle
            )
        elif source == "files":
            usage._from_files(target, path, regions, progress_bar)
        else:
            usage._from_athena(target, path, regions, owner_role_arn, athena or {})
        usage._finish(regions if source != "lookup" else None, application_id, known, wanted)
        return usage

    # --- sources ----------------------------------------------------------------------------

    def _from_lookup(
        self,
        target: AwsTarget,
        regions: list[str] | None,
        owner_role_arn: str | None,
        progress: Callable[[lookup.HarvestProgress], None] | None,
        progress_bar: ProgressFactory | None,
        cache: bool,
        settle: int,
    ) -> None:
        self.key_arn = resolve_key_arn(self.key, target)
        regions = regions or [target.resolved_region()]
        streams = _streams(target, regions, owner_role_arn, _key_owner(self.key_arn))
        start, end = self.window.epoch()
        with harvest_bars(progress_bar, also=progress) as show:
            records, self.stats = lookup.harvest(
                streams,
                self.key_arn,
                start,
                end,
                cache=lookup.cache_dir() if cache else None,
                progress=show,
                settle=settle,
            )
        self._take(parse_records(records))
        now = pd.Timestamp.now(tz="UTC").to_pydatetime()
        self.completeness = history_gaps(
            self.window.start.to_pydatetime(), self.window.end.to_pydatetime(), now
        )

    def _from_files(
        self,
        target: AwsTarget,
        path: str | Path | None,
        regions: list[str] | None,
        progress: ProgressFactory | None,
    ) -> None:
        if path is None:
            raise UserError(
                "--source files needs a PATH: a CloudTrail file, a trail folder or s3://BUCKET/PREFIX"
            )
        self.key_arn = _key_arn_or_none(self.key, target)
        scope = self._scope(regions)
        if is_s3_url(path):
            self.completeness = trail_check(target, regions, bucket_of(str(path)))
        files = _trail_files(target, path, scope)
        batches = read_batches(files, scope, progress=progress)
        self._take(frame_of(join_batches(self._of_key(batch) for batch in batches)))
        self.notes.append(f"read {len(files)} CloudTrail file(s) under {path}")

    def _scope(self, regions: list[str] | None) -> Scope:
        return Scope.of(
            self.window.start.to_pydatetime(), self.window.end.to_pydatetime(), regions=regions
        )

    def _of_key(self, batch: UsageBatch) -> UsageBatch:
        """Only the rows on this key, so a long read keeps no other key's calls in memory."""
        keys = batch.table.column("key_arn").cast(pa.string())
        if self.key_arn:
            mine = pc.equal(keys, self.key_arn)
        else:
            mine = pc.ends_with(keys, "key/" + self.key)
        return UsageBatch(
            batch.table.filter(pc.fill_null(mine, False)),
            batch.skipped_non_kms,
            batch.skipped_malformed,
        )

    def _from_athena(
        self,
        target: AwsTarget,
        path: str | Path | None,
        regions: list[str] | None,
        owner_role_arn: str | None,
        options: Mapping[str, str],
    ) -> None:
        self.key_arn = _key_arn_or_none(self.key, target)
        start, end = self.window.epoch()
        table = options.get("table", sql.TABLE)
        needle = self.key_arn or self.key
        query = sql.key_usage_query(needle, start, end, table=table, regions=regions)
        local = _local_backend(target)
        if path is None or is_s3_url(path):
            bucket = bucket_of(str(path)) if path is not None else None
            self.completeness = trail_check(target, regions, bucket)
        if path is not None and is_s3_url(path) and local is None:
            rows = self._athena_rows(target, str(path), query, options)
            where = f"Athena table {table} over {path}"
        else:
            # The local backend has no Athena: the same SQL runs with DuckDB over the files.
            where_files = path if path is not None else _local_log_dir(local)
            files = (
                _trail_files(target, where_files, self._scope(regions))
                if path is not None or any(Path(where_files).rglob("*.json.gz"))
                else []  # the local backend has delivered nothing yet
            )
            rows = sql.run_local(query, files, table=table)
            where = f"the trail logs under {where_files} (DuckDB)"
        self._take(parse_records(sql.rows_to_records(rows)))
        self.notes.append(f"queried {where}")

    def _athena_rows(
        self, target: AwsTarget, location: str, query: sql.Query, options: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        accounts = {_caller_account(target)}
        if self.key_arn:
            accounts.add(_key_owner(self.key_arn))
        trail = sql.TrailTable(
            location,
            tuple(sorted(accounts)),
            (target.resolved_region(),),
            table=options.get("table", sql.TABLE),
        )
        client = target.client("athena")
        settings = {
            "database": options.get("database", "default"),
            "workgroup": options.get("workgroup", "primary"),
            "output_location": options.get("output_location"),
        }
        sql.run_athena(sql.Query(trail.ddl(), ()), athena=client, **settings)
        return sql.run_athena(query, athena=client, **settings)

    def _take(self, usage: UsageFrame) -> None:
        self.frame = usage.frame
        self.skipped_non_kms = usage.skipped_non_kms
        self.skipped_malformed = usage.skipped_malformed

    def _finish(
        self,
        regions: list[str] | None,
        application_id: str | None,
        sessions: list[KernelSession],
        wanted: KernelSession | None,
    ) -> None:
        frame = self.frame
        keep = (frame["event_time"] >= self.window.start) & (frame["event_time"] <= self.window.end)
        keys = frame["key_arn"].astype(object)
        if self.key_arn:
            keep &= keys == self.key_arn
        else:
            keep &= keys.map(lambda k: isinstance(k, str) and k.endswith("key/" + self.key))
        if regions:
            keep &= frame["aws_region"].astype(object).isin(regions)
        if application_id:
            keep &= frame["application_id"].astype(object) == application_id
        frame = frame[keep].sort_values(["event_time", "event_id"], kind="stable")
        frame = join_shared_copies(frame.reset_index(drop=True), _key_owner(self.key_arn))
        frame["session"] = _match_sessions(frame, sessions)
        if wanted is not None:
            frame = frame[frame["session"] == wanted.session_id].reset_index(drop=True)
        self.frame = _recategorize(frame)
        if self.frame.empty and not self.window.empty:
            scope = f" for application {application_id}" if application_id else ""
            scope += f" in session {wanted.session_id}" if wanted else ""
            self.notes.append(f"no KMS calls on {self.key_arn or self.key}{scope} in {self.window}")

    # --- views ------------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per KMS call: the usage frame plus ``recipient_accounts`` and ``session``."""
        return self.frame

    def summary(self) -> pd.DataFrame:
        """One row per application and session: calls, first and last use, principals."""
        return summarize(self.frame)

    def findings(self) -> pd.DataFrame:
        """Calls by unexpected principals, denied calls, and calls lacking expected context."""
        return findings(
            self.frame,
            expected_principals=self.expected_principals,
            expected_context=self.expected_context,
        )

    def timeline(self, bins: int = 60) -> Timeline:
        """Key use per application (or session) over the window, as an SVG timeline."""
        return Timeline.of(self.frame, start=self.window.start, end=self.window.end, bins=bins)

    def headline(self) -> str:
        """One line: how many calls on which key, from where, in which window."""
        return (
            f"{len(self.frame)} KMS calls on {self.key_arn or self.key} from {self.source},"
            f" {self.window}"
        )

    def warning(self) -> str | None:
        """One line on what the result may be missing and why, or None."""
        return self.completeness.line()

    def __repr__(self) -> str:
        parts = [f"warning: {self.warning()}"] if self.warning() else []
        parts += [self.headline(), *self.notes]
        summary = self.summary()
        if len(summary):
            parts.append(summary.to_string())
        findings = self.findings()
        parts.append(
            f"{len(findings)} finding(s)" + (f":\n{findings.to_string()}" if len(findings) else "")
        )
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data: window, notes, costs, summary, findings and rows."""
        return {
            "key": self.key,
            "key_arn": self.key_arn,
            "source": self.source,
            "start": iso_time(self.window.start),
            "end": iso_time(self.window.end),
            "calls": len(self.frame),
            "skipped_non_kms": self.skipped_non_kms,
            "skipped_malformed": self.skipped_malformed,
            "completeness": self.warning(),
            "notes": list(self.notes),
            "harvest": self.stats.to_dict() if self.stats else None,
            "summary": _plain(self.summary(), ("first_use", "last_use")),
            "findings": _plain(self.findings(), ("event_time",)),
            "rows": UsageFrame(self.frame).rows(),
        }

    def _repr_html_(self) -> str:
        parts = []
        if self.warning():
            parts.append(f"<p><b>warning:</b> {html.escape(self.warning() or '')}</p>")
        parts.append(f"<p><b>{html.escape(self.headline())}</b></p>")
        parts += [f"<p><i>{html.escape(note)}</i></p>" for note in self.notes]
        if not self.frame.empty:
            found = self.findings()
            parts.append(self.summary().to_html(index=False))
            parts.append(self.timeline().to_svg())
            parts.append(f"<p>{len(found)} finding(s)</p>")
            if len(found):
                parts.append(found.head(_HTML_ROWS).to_html(index=False))
            parts.append(self.frame.head(_HTML_ROWS).to_html())
        return "".join(parts)


def resolve_key_arn(key: str, target: AwsTarget) -> str:
    """The key ARN of a key ARN, key id or alias (aliases and ids are looked up with KMS)."""
    if KEY_ARN_PATTERN.fullmatch(key):
        return key
    from emr_cmk_notebook.keys import describe_key

    return describe_key(target.client("kms"), key).arn


def _key_arn_or_none(key: str, target: AwsTarget) -> str | None:
    """The key ARN, or None for a bare key id (matched against record ARNs by its id)."""
    if KEY_ARN_PATTERN.fullmatch(key):
        return key
    if _KEY_ID.match(key):
        return None
    return resolve_key_arn(key, target)


def _key_owner(key_arn: str | None) -> str | None:
    match = KEY_ARN_PATTERN.fullmatch(key_arn or "")
    return match.group(2) if match else None


def _wanted_session(
    session: str | KernelSession | None, known: list[KernelSession]
) -> KernelSession | None:
    if session is None or isinstance(session, KernelSession):
        return session
    for candidate in known:
        if candidate.session_id == session:
            return candidate
    names = ", ".join(s.session_id for s in known) or "none"
    raise UserError(
        f"--session {session!r} was not started from this kernel (known: {names})",
        hint="filter by --application-id instead",
    )


def _streams(
    target: AwsTarget, regions: list[str], owner_role_arn: str | None, key_owner: str | None
) -> list[lookup.Stream]:
    caller = _caller_account(target)
    streams = [lookup.Stream(caller, region, _lookup_client(target, region)) for region in regions]
    if owner_role_arn:
        owner = parse_arn(owner_role_arn).account
        if key_owner and owner != key_owner:
            raise UserError(
                f"--owner-role-arn is in account {owner} but the key belongs to {key_owner}",
                hint="give a role in the key owner's account",
            )
        if owner != caller:
            as_owner = target.assume_role(owner_role_arn, "emr-cmk-key-usage")
            streams += [
                lookup.Stream(owner, region, _lookup_client(as_owner, region)) for region in regions
            ]
    return streams


def _lookup_client(target: AwsTarget, region: str) -> Any:
    # Retries are the harvest's own (paced, jittered); botocore must not add its own.
    return target.with_changes(region=region, max_attempts=1).client("cloudtrail")


def _caller_account(target: AwsTarget) -> str:
    return target.client("sts").get_caller_identity()["Account"]


def _local_backend(target: AwsTarget) -> dict[str, Any] | None:
    """The local backend's status when the target is that backend, else None."""
    from emr_cmk_notebook.clients import local_backend_status

    return local_backend_status(target.endpoint_url or service_endpoint("cloudtrail"))


def _local_log_dir(status: dict[str, Any] | None) -> Path:
    """The local backend's delivered CloudTrail logs, when the target is that backend."""
    if status is None:
        raise UserError(
            "--source athena needs the trail's location",
            hint="give s3://BUCKET/PREFIX for Athena, or a local folder of CloudTrail logs",
        )
    return Path(status["cloudtrail_log_dir"])


def trail_check(target: AwsTarget, regions: list[str] | None, bucket: str | None) -> Completeness:
    """What the trails writing to ``bucket`` (any trail when None) leave out, by region."""
    clients: dict[str, Any] = {}

    def client_for(region: str) -> Any:
        if region not in clients:
            clients[region] = target.with_changes(region=region).client("cloudtrail")
        return clients[region]

    return trail_gaps(client_for, regions or [target.resolved_region()], bucket)


def _trail_files(target: AwsTarget, path: str | Path, scope: Scope) -> list[LogFile]:
    s3 = target.client("s3") if is_s3_url(path) else None
    return list_log_files(path, scope, s3=s3)


def _recategorize(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns again after filtering and joining, with unused categories gone."""
    for name in CATEGORY_COLUMNS:
        if name in frame:
            column = frame[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                frame[name] = column.cat.remove_unused_categories()
            else:
                frame[name] = column.astype("category")
    return frame


def _plain(frame: pd.DataFrame, time_columns: tuple[str, ...]) -> list[dict[str, Any]]:
    plain = frame.astype(object).where(frame.notna(), None)
    for name in time_columns:
        if len(frame):
            plain[name] = iso_times(frame[name]).to_numpy(dtype=object)
    return plain.to_dict("records")
