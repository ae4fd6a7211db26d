"""``%%emr_spark [-o VAR] [--sql]``: run the cell in the active session.

With ``-o VAR`` a pyspark cell (or the ``--sql`` query) must end with a DataFrame; its first
``--max-rows`` rows come back as a pandas DataFrame in ``VAR`` through Arrow (see
``sessions/arrow_results.py``), with one line saying so when rows were left behind. Without
``-o``, ``--sql`` shows the query's table.
"""

from __future__ import annotations

import ast
import sys
from typing import Any

from emr_cmk_notebook.magics.args import MagicParser, MagicUsageError

PARSER = MagicParser("%%emr_spark")
PARSER.add_argument("-o", "--output", metavar="VAR", help="put the resulting DataFrame in VAR")
PARSER.add_argument("--sql", action="store_true", help="the cell is one Spark SQL query")
PARSER.add_argument("-n", "--max-rows", type=int, default=10_000, help="rows brought back by -o")
PARSER.add_argument("-s", "--session", type=int, help="session id (default: the active one)")

# The name the cell's last DataFrame is kept under on the session between the two statements.
HOLDER = "_emr_cmk_output"


def run(magics: Any, line: str, cell: str) -> None:
    args = PARSER.parse(line)
    if not cell.strip():
        raise MagicUsageError("%%emr_spark: the cell is empty; write the code to run below it")
    if args.output is not None and not args.output.isidentifier():
        raise MagicUsageError(f"%%emr_spark: -o {args.output!r} is not a Python variable name")
    if args.max_rows < 1:
        raise MagicUsageError("%%emr_spark: --max-rows must be at least 1")
    if args.sql and args.output:
        from IPython.display import display

        _run(magics, f"{HOLDER} = spark.sql({cell!r})", "pyspark", args.session)
        display(_bring_back(magics, args))
        return None
    if args.sql:
        from IPython.display import display

        display(_run(magics, cell, "sql", args.session))
        return None
    code = _keep_last_expression(cell) if args.output else cell
    result = _run(magics, code, "pyspark", args.session)
    if result.text:
        print(result.text)
    if args.output:
        _bring_back(magics, args)
    return None


def _run(magics: Any, code: str, kind: str, session_id: int | None) -> Any:
    """Run one statement with its progress shown while it runs; its checked result."""
    from emr_cmk_notebook.widgets.spark_progress import link_of, shown

    sessions = magics.kernel().manager
    link = link_of(lambda: sessions.dashboard_url(sessions.status(session_id)))
    with shown("%%emr_spark", mode=magics.progress, dashboard=link) as display:
        result = sessions.run(code, kind=kind, session_id=session_id, progress=display.update)
        display.end("done" if result.ok else "failed")
    return _checked(result)


def _bring_back(magics: Any, args: Any) -> Any:
    """The DataFrame kept under HOLDER into the variable ``-o`` names, through Arrow."""
    from emr_cmk_notebook.sessions.arrow_results import fetch

    sessions = magics.kernel().manager
    result = fetch(
        lambda code: _checked(sessions.run(code, session_id=args.session)).text,
        HOLDER,
        args.max_rows,
        max_bytes=magics.max_result_bytes,
        chunk_bytes=magics.result_chunk_bytes,
    )
    magics.shell.user_ns[args.output] = result.frame
    notice = result.notice()
    if notice:
        print(notice)
    return result.frame


def _checked(result: Any) -> Any:
    """The result, or its remote traceback on stderr and a one-line failed cell."""
    if not result.ok:
        text = result.traceback_text()
        if text:
            print(text, file=sys.stderr, end="")
        result.raise_for_error()
    return result


def _keep_last_expression(cell: str) -> str:
    """The cell with its last expression assigned to HOLDER instead of shown."""
    try:
        tree = ast.parse(cell)
    except SyntaxError as exc:
        raise MagicUsageError(f"%%emr_spark: line {exc.lineno}: {exc.msg}") from None
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr):
        raise MagicUsageError(
            "%%emr_spark: with -o, end the cell with the DataFrame to bring back (e.g. `df`)"
        )
    lines = cell.splitlines(keepends=True)
    # col_offset counts UTF-8 bytes, not characters.
    prefix = lines[last.lineno - 1].encode()[: last.col_offset].decode()
    before = "".join(lines[: last.lineno - 1]) + prefix
    expression = ast.get_source_segment(cell, last)
    return f"{before}{HOLDER} = ({expression})\n"
