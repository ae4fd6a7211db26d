"""The scale path: one SQL query over a trail's S3 logs, on Athena or locally with DuckDB.

``table_ddl`` writes the ``CREATE EXTERNAL TABLE`` for a trail's bucket, with partition
projection on account, region and day (``timestamp``, ``yyyy/MM/dd``), so no partition is ever
added by hand. ``key_usage_query`` is the parameterised query for one key and time window.
``run_athena`` runs it on Amazon Athena; ``run_local`` runs the very same SQL text with DuckDB
over the log files of a folder or ``s3://`` prefix laid out as a trail delivers them
(``AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/Y/M/D``), found and pruned as the files route finds
them, which is how the local backend's delivered logs are read. The SQL uses only what both engines
understand; the one Trino function DuckDB lacks (``json_format``) is defined there as a macro.

Athena itself cannot run here: ``run_athena`` is small on purpose and follows the Athena API
(``StartQueryExecution`` with ``ExecutionParameters``, then ``GetQueryResults`` pages).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from emr_cmk_notebook.core.errors import ServiceFault, UserError
from emr_cmk_notebook.usage.trail_files import LogFile, is_s3_url

TABLE = "cloudtrail_logs"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOGS_FOLDER = re.compile(r"/AWSLogs/(o-[a-z0-9]+/)?$")
_RECORD_FIELDS = {
    "eventtime": "eventTime",
    "eventsource": "eventSource",
    "eventname": "eventName",
    "eventid": "eventID",
    "awsregion": "awsRegion",
    "sourceipaddress": "sourceIPAddress",
    "useragent": "userAgent",
    "errorcode": "errorCode",
    "errormessage": "errorMessage",
    "recipientaccountid": "recipientAccountId",
    "sharedeventid": "sharedEventID",
}
_IDENTITY_FIELDS = {
    "identity_type": "type",
    "principal_arn": "arn",
    "account_id": "accountId",
    "invoked_by": "invokedBy",
    "principal_id": "principalId",
}
_RESOURCE_FIELDS = {"arn": "ARN", "accountid": "accountId", "type": "type"}

_DDL = """\
CREATE EXTERNAL TABLE IF NOT EXISTS {table} (
    eventversion STRING,
    useridentity STRUCT<
        type: STRING,
        principalid: STRING,
        arn: STRING,
        accountid: STRING,
        invokedby: STRING,
        accesskeyid: STRING,
        username: STRING>,
    eventtime STRING,
    eventsource STRING,
    eventname STRING,
    awsregion STRING,
    sourceipaddress STRING,
    useragent STRING,
    errorcode STRING,
    errormessage STRING,
    requestparameters STRING,
    responseelements STRING,
    additionaleventdata STRING,
    requestid STRING,
    eventid STRING,
    readonly STRING,
    resources ARRAY<STRUCT<
        arn: STRING,
        accountid: STRING,
        type: STRING>>,
    eventtype STRING,
    apiversion STRING,
    recipientaccountid STRING,
    serviceeventdetails STRING,
    sharedeventid STRING,
    vpcendpointid STRING,
    eventcategory STRING
)
PARTITIONED BY (account STRING, region STRING, `timestamp` STRING)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '{location}'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.account.type' = 'enum',
    'projection.account.values' = '{accounts}',
    'projection.region.type' = 'enum',
    'projection.region.values' = '{regions}',
    'projection.timestamp.type' = 'date',
    'projection.timestamp.format' = 'yyyy/MM/dd',
    'projection.timestamp.interval' = '1',
    'projection.timestamp.interval.unit' = 'DAYS',
    'projection.timestamp.range' = '{first_day},NOW',
    'storage.location.template' = '{location}${{account}}/CloudTrail/${{region}}/${{timestamp}}'
)
"""

# Columns are named the way Athena names them (lower case); DuckDB matches struct fields
# without regard to case, so the same text reads the camelCase fields of the local view.
_QUERY = """\
SELECT eventtime, eventsource, eventname, eventid, awsregion, sourceipaddress, useragent,
       errorcode, errormessage, readonly, recipientaccountid, sharedeventid,
       useridentity.type AS identity_type, useridentity.arn AS principal_arn,
       useridentity.accountid AS account_id, useridentity.invokedby AS invoked_by,
       useridentity.principalid AS principal_id, requestparameters,
       json_format(CAST(resources AS JSON)) AS resources_json
FROM {table}
WHERE "timestamp" BETWEEN ? AND ?
  AND eventtime BETWEEN ? AND ?
  AND eventsource = 'kms.amazonaws.com'
  AND (strpos(json_format(CAST(resources AS JSON)), ?) > 0 OR strpos(requestparameters, ?) > 0)
{extra}ORDER BY eventtime DESC, eventid
"""

_LOCAL_VIEW = """\
CREATE MACRO json_format(j) AS CAST(j AS VARCHAR);
CREATE VIEW {table} AS
WITH files AS (
    SELECT filename, json
    FROM read_json_objects({glob}, filename = true, maximum_object_size = 1073741824)
), records AS (
    SELECT filename, unnest(json_extract(json, '$.Records[*]')) AS r FROM files
)
SELECT
    r->>'eventVersion' AS eventversion,
    json_transform(r->'userIdentity', '{identity}') AS useridentity,
    r->>'eventTime' AS eventtime,
    r->>'eventSource' AS eventsource,
    r->>'eventName' AS eventname,
    r->>'awsRegion' AS awsregion,
    r->>'sourceIPAddress' AS sourceipaddress,
    r->>'userAgent' AS useragent,
    r->>'errorCode' AS errorcode,
    r->>'errorMessage' AS errormessage,
    CAST(r->'requestParameters' AS VARCHAR) AS requestparameters,
    r->>'eventID' AS eventid,
    r->>'readOnly' AS readonly,
    json_transform(r->'resources', '{resources}') AS resources,
    r->>'recipientAccountId' AS recipientaccountid,
    r->>'sharedEventID' AS sharedeventid,
    -- The partitions come from the trail layout (an organisation trail's too); a file outside
    -- it gets them from its records, as Athena's projection would have placed it.
    coalesce(
        nullif(
            regexp_extract(filename, '/AWSLogs/(o-[a-z0-9]+/)?([0-9]{{12}})/CloudTrail/', 2), ''
        ),
        r->>'recipientAccountId'
    ) AS account,
    coalesce(
        nullif(regexp_extract(filename, '/CloudTrail/([a-z0-9-]+)/[0-9]{{4}}/', 1), ''),
        r->>'awsRegion'
    ) AS region,
    coalesce(
        nullif(regexp_extract(
            filename, '/CloudTrail/[a-z0-9-]+/([0-9]{{4}}/[0-9]{{2}}/[0-9]{{2}})/', 1
        ), ''),
        replace(substr(r->>'eventTime', 1, 10), '-', '/')
    ) AS "timestamp"
FROM records
"""
_IDENTITY_SHAPE = json.dumps(
    {
        name: "VARCHAR"
        for name in (
            "type",
            "principalId",
            "arn",
            "accountId",
            "invokedBy",
            "accessKeyId",
            "userName",
        )
    }
)
_RESOURCES_SHAPE = json.dumps([{"ARN": "VARCHAR", "accountId": "VARCHAR", "type": "VARCHAR"}])


@dataclass(frozen=True)
class TrailTable:
    """A trail's S3 logs as an Athena table: where they are and which partitions to project."""

    location: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    table: str = TABLE
    first_day: str = "2020/01/01"

    def __post_init__(self) -> None:
        if not self.location.startswith("s3://"):
            raise UserError(f"trail location {self.location!r} is not an s3:// URL")
        if not _NAME.match(self.table):
            raise UserError(f"table name {self.table!r} must be letters, digits and _")
        if not self.accounts or not all(a.isdigit() and len(a) == 12 for a in self.accounts):
            raise UserError("name the trail's accounts as 12-digit account ids")
        if not self.regions:
            raise UserError("name at least one region of the trail")

    @property
    def logs_location(self) -> str:
        """The ``.../AWSLogs/`` folder of the trail (``.../AWSLogs/o-ORG/`` for an organisation
        trail), with a trailing slash."""
        base = self.location.rstrip("/") + "/"
        return base if _LOGS_FOLDER.search(base) else base + "AWSLogs/"

    def ddl(self) -> str:
        """The ``CREATE EXTERNAL TABLE`` statement with partition projection."""
        return _DDL.format(
            table=self.table,
            location=self.logs_location,
            accounts=",".join(self.accounts),
            regions=",".join(self.regions),
            first_day=self.first_day,
        )


@dataclass(frozen=True)
class Query:
    """SQL text with ``?`` placeholders and the values that go in them, in order."""

    sql: str
    params: tuple[str, ...]


def key_usage_query(
    key: str,
    start: int,
    end: int,
    *,
    table: str = TABLE,
    regions: Iterable[str] | None = None,
    accounts: Iterable[str] | None = None,
) -> Query:
    """The query for the KMS records naming ``key`` (a key ARN or key id) in a time window.

    ``start`` and ``end`` are epoch seconds; the day partitions bound the scan, up to the day
    after ``end``: a file lands in the folder of its delivery, minutes after its newest record.
    """
    if not _NAME.match(table):
        raise UserError(f"table name {table!r} must be letters, digits and _")
    first, last = (datetime.fromtimestamp(t, UTC) for t in (start, end))
    needle = f'"{key}"' if key.startswith("arn:") else f'key/{key}"'
    params = [
        f"{first:%Y/%m/%d}",
        f"{last + timedelta(days=1):%Y/%m/%d}",
        f"{first:%Y-%m-%dT%H:%M:%SZ}",
        f"{last:%Y-%m-%dT%H:%M:%SZ}",
        needle,
        needle,
    ]
    extra = ""
    for column, values in (("region", regions), ("account", accounts)):
        if values:
            values = list(values)
            extra += f"  AND {column} IN ({', '.join('?' * len(values))})\n"
            params += values
    return Query(_QUERY.format(table=table, extra=extra), tuple(params))


def run_local(
    query: Query, files: Sequence[LogFile], *, table: str = TABLE
) -> list[dict[str, Any]]:
    """Run ``query`` with DuckDB over trail log files (as ``trail_files.list_log_files`` finds
    them); files from S3 are copied to a temporary folder under their key first."""
    try:
        import duckdb
    except ImportError:
        raise UserError(
            "reading trail logs with SQL needs DuckDB",
            hint="pip install 'emr-cmk-notebook[audit]'",
        ) from None
    if not files:
        return []
    with tempfile.TemporaryDirectory(prefix="emr-cmk-trail-") as copies:
        paths = [_local_path(log_file, Path(copies)) for log_file in files]
        connection = duckdb.connect()
        try:
            connection.execute(
                _LOCAL_VIEW.format(
                    table=table,
                    glob="[" + ", ".join(_literal(path) for path in paths) + "]",
                    identity=_IDENTITY_SHAPE,
                    resources=_RESOURCES_SHAPE,
                )
            )
            cursor = connection.execute(query.sql, list(query.params))
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            connection.close()


def _local_path(log_file: LogFile, copies: Path) -> str:
    if not is_s3_url(log_file.name):
        return str(Path(log_file.name).absolute())
    copy = copies / log_file.name.removeprefix("s3://")
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(log_file.read())
    return str(copy)


def run_athena(
    query: Query,
    *,
    athena: Any,
    database: str = "default",
    workgroup: str = "primary",
    output_location: str | None = None,
    poll_seconds: float = 1.0,
    timeout: float = 900.0,
) -> list[dict[str, Any]]:
    """Run ``query`` on Athena with the boto3 client ``athena``; rows come back as strings.

    The table must exist (run ``TrailTable.ddl()`` once). Athena substitutes execution
    parameters as SQL literals, so each value is sent quoted.
    """
    request: dict[str, Any] = {
        "QueryString": query.sql,
        "QueryExecutionContext": {"Database": database},
        "WorkGroup": workgroup,
    }
    if query.params:
        request["ExecutionParameters"] = [_literal(value) for value in query.params]
    if output_location:
        request["ResultConfiguration"] = {"OutputLocation": output_location}
    run_id = athena.start_query_execution(**request)["QueryExecutionId"]
    deadline = time.monotonic() + timeout
    while True:
        status = athena.get_query_execution(QueryExecutionId=run_id)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            break
        if status["State"] in ("FAILED", "CANCELLED"):
            raise ServiceFault(
                f"Athena query {run_id} {status['State'].lower()}: "
                f"{status.get('StateChangeReason', 'no reason given')}",
                operation="StartQueryExecution",
            )
        if time.monotonic() > deadline:
            athena.stop_query_execution(QueryExecutionId=run_id)
            raise ServiceFault(f"Athena query {run_id} took longer than {timeout:.0f} s")
        time.sleep(poll_seconds)
    rows: list[dict[str, Any]] = []
    names: list[str] | None = None
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=run_id):
        for row in page["ResultSet"]["Rows"]:
            values = [cell.get("VarCharValue") for cell in row["Data"]]
            if names is None:
                names = values  # the first row of the first page holds the column names
                continue
            rows.append(dict(zip(names, values, strict=True)))
    return rows


def rows_to_records(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Query rows back into CloudTrail records, so they go through the same frame parse."""
    records = []
    for row in rows:
        record: dict[str, Any] = {
            name: row[column] for column, name in _RECORD_FIELDS.items() if row.get(column)
        }
        if row.get("readonly") in ("true", "false"):
            record["readOnly"] = row["readonly"] == "true"
        identity = {
            name: row[column] for column, name in _IDENTITY_FIELDS.items() if row.get(column)
        }
        if identity:
            record["userIdentity"] = identity
        params = _json(row.get("requestparameters"))
        if isinstance(params, dict):
            record["requestParameters"] = params
        resources = _json(row.get("resources_json"))
        if isinstance(resources, list):
            record["resources"] = [_resource(item) for item in resources]
        records.append(record)
    return records


def _resource(item: Any) -> dict[str, Any]:
    if isinstance(item, list):
        # Older engines render a ROW as a list in declaration order: arn, accountid, type.
        item = dict(zip(_RESOURCE_FIELDS, item, strict=False))
    if not isinstance(item, dict):
        return {}
    fields = {str(name).lower(): value for name, value in item.items()}
    return {name: fields[lower] for lower, name in _RESOURCE_FIELDS.items() if fields.get(lower)}


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"
