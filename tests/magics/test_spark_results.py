"""``%%emr_spark -o`` and ``--sql -o``: results through Arrow, exact dtypes, the cut notice, the
byte cap and chunked outputs, in a real IPython shell against the local backend's Livy session."""

from __future__ import annotations

import datetime
import decimal

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions import StatementFailed
from tests.conftest import demo_app_id
from tests.magics.conftest import Shell
from tests.sessions.conftest import pointed_at, session_role

pytestmark = pytest.mark.integration

# Small enough that a few thousand rows need several statement outputs.
MESSAGE_LIMIT = 64 * 1024

EVERY_TYPE = """\
df = spark.sql('''
SELECT id,
       CAST(id AS DOUBLE) / 4 AS ratio,
       CONCAT('row-', id) AS label,
       TIMESTAMP'2024-03-01 12:00:00 UTC' + make_interval(0, 0, 0, 0, 0, 0, id) AS at,
       id % 2 = 0 AS even,
       CAST(id AS DECIMAL(12, 2)) / 3 AS amount,
       DATE'2024-03-01' + CAST(id AS INT) AS day,
       ARRAY(id, id + 1) AS pair,
       NAMED_STRUCT('n', id, 's', CAST(id AS STRING)) AS record,
       MAP('k', id) AS lookup,
       IF(id = 1, NULL, id) AS maybe_id,
       IF(id = 1, NULL, id % 2 = 0) AS maybe_even,
       IF(id = 1, NULL, CAST(id AS DOUBLE)) AS maybe_ratio,
       IF(id = 1, NULL, CAST(id AS STRING)) AS maybe_label,
       IF(id = 1, NULL, TIMESTAMP'2024-03-01 00:00:00 UTC') AS maybe_at,
       CAST(id AS INT) AS small
FROM range(3)
''')
df"""


@pytest.fixture(scope="module")
def shell(backend):
    """One session for the module, whose Livy messages are limited to MESSAGE_LIMIT bytes."""
    status = backend.status()
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")
    shell = Shell(ip)
    # What these tests read is the result and its notice; the progress line has its own tests.
    ip.run_line_magic("config", 'EmrCmk.progress = "off"')
    with pointed_at(backend):
        shell.line(
            "emr_session",
            f"start --application-id {demo_app_id(status)} --role {session_role(status)} "
            f"--key alias/emr-analytics --conf livy.rsc.rpc.max.size={MESSAGE_LIMIT}",
        )
        yield shell
        shell.line("emr_session", "stop --all")
    ip.run_line_magic("config", 'EmrCmk.progress = "auto"')


@pytest.fixture
def chunks(shell):
    """Results cut into 16 KiB chunks for one test."""
    shell.run("%config EmrCmk.result_chunk_bytes = 16384")
    yield
    shell.run(f"%config EmrCmk.result_chunk_bytes = {8 * 1024 * 1024}")


def statements(shell) -> int:
    manager = shell.ip.magics_manager.registry["EmrCmk"].kernel().manager
    info = manager.status()
    return len(manager.livy_client(info.application_id).statements(info.id))


def test_every_column_type_comes_back_with_its_exact_dtype_and_nulls(shell):
    shell.run(f"%%emr_spark -o typed\n{EVERY_TYPE}")
    frame = shell.user_ns["typed"]
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes == {
        "id": "int64",
        "ratio": "float64",
        "label": "object",
        "at": "datetime64[us, UTC]",
        "even": "bool",
        "amount": "object",
        "day": "object",
        "pair": "object",
        "record": "object",
        "lookup": "object",
        "maybe_id": "Int64",
        "maybe_even": "boolean",
        "maybe_ratio": "float64",
        "maybe_label": "object",
        "maybe_at": "datetime64[us, UTC]",
        "small": "int32",
    }
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["at"] == pd.Timestamp("2024-03-01 12:00:00", tz="UTC")
    assert second["amount"] == decimal.Decimal("0.333333")
    assert first["day"] == datetime.date(2024, 3, 1)
    assert second["pair"] == [1, 2]
    assert second["record"] == {"n": 1, "s": "1"}
    assert second["lookup"] == {"k": 1}
    assert second["maybe_id"] is pd.NA and frame["maybe_id"].tolist()[2] == 2
    assert second["maybe_even"] is pd.NA and frame["maybe_even"].tolist()[0] is True
    assert pd.isna(second["maybe_ratio"]) and second["maybe_label"] is None
    assert pd.isna(second["maybe_at"])


def test_instants_come_back_in_utc_whatever_the_sessions_time_zone(shell):
    shell.run(
        "%%emr_spark -o zoned\nspark.conf.set('spark.sql.session.timeZone', 'Asia/Tokyo')\n"
        "spark.sql(\"SELECT TIMESTAMP'2024-03-01 09:00:00 Asia/Tokyo' AS at\")"
    )
    shell.run("%%emr_spark\nspark.conf.set('spark.sql.session.timeZone', 'UTC')")
    assert shell.user_ns["zoned"]["at"].tolist() == [pd.Timestamp("2024-03-01 00:00", tz="UTC")]


def test_a_large_integer_with_nulls_stays_exact(shell):
    shell.run(
        "%%emr_spark -o big\nspark.sql('SELECT IF(id = 0, NULL, 9007199254740993 + id) AS n "
        "FROM range(2)')"
    )
    assert shell.user_ns["big"]["n"].tolist() == [pd.NA, 9007199254740994]


def test_a_cut_result_says_so_in_one_line(shell, capsys):
    capsys.readouterr()
    shell.run("%%emr_spark -o head -n 10\nspark.range(100000)")
    assert len(shell.user_ns["head"]) == 10
    assert capsys.readouterr().out.strip() == "10 of 100,000 rows; -n N for more"


def test_a_whole_result_says_nothing(shell, capsys):
    capsys.readouterr()
    shell.run("%%emr_spark -o whole -n 10\nspark.range(10)")
    assert shell.user_ns["whole"]["id"].tolist() == list(range(10))
    assert capsys.readouterr().out == ""


def test_a_result_over_the_byte_cap_is_refused_in_one_line(shell):
    shell.run("%config EmrCmk.max_result_bytes = 1000")
    try:
        with pytest.raises(UserError) as caught:
            shell.run("%%emr_spark -o capped\nspark.range(1000)")
    finally:
        shell.run(f"%config EmrCmk.max_result_bytes = {256 * 1024 * 1024}")
    message = str(caught.value)
    assert "\n" not in message
    assert "the result is 7.8 KiB (1,000 rows), over the 1,000 bytes cap" in message
    assert "EmrCmk.max_result_bytes" in message
    assert "capped" not in shell.user_ns
    # The session is left clean: the next result comes back.
    shell.run("%%emr_spark -o after\nspark.range(3)")
    assert shell.user_ns["after"]["id"].tolist() == [0, 1, 2]


def test_the_byte_cap_refuses_a_value_below_one(shell, caplog):
    shell.run("%config EmrCmk.max_result_bytes = 0")
    assert "EmrCmk.max_result_bytes must be at least 1 byte" in caplog.text
    assert shell.ip.magics_manager.registry["EmrCmk"].max_result_bytes == 256 * 1024 * 1024


def test_a_result_larger_than_one_message_comes_back_in_several(shell, chunks):
    cell = "spark.range(20000).selectExpr('id', 'uuid() AS noise')"
    before = statements(shell)
    shell.run(f"%%emr_spark -o many -n 20000\n{cell}")
    frame = shell.user_ns["many"]
    assert frame["id"].tolist() == list(range(20000))
    assert frame["noise"].str.len().eq(36).all()
    # The cell, the first chunk, at least two more chunks, and the clean-up.
    assert statements(shell) - before >= 5


def test_the_backend_refuses_an_output_larger_than_livy_allows(shell):
    with pytest.raises(StatementFailed, match="exceeds maximum allowed size"):
        shell.run("%%emr_spark\nprint('x' * 100000)")


def test_sql_dash_o_comes_back_through_arrow_beyond_livys_sql_rows(shell, capsys):
    shell.run(
        "%%emr_spark --sql -o counted -n 5000\n"
        "SELECT id, TIMESTAMP'2024-01-01 00:00:00 UTC' AS at FROM range(2000)"
    )
    frame = shell.user_ns["counted"]
    assert len(frame) == 2000
    assert str(frame["at"].dtype) == "datetime64[us, UTC]"


def test_dash_o_on_a_cell_not_ending_with_a_dataframe_is_one_line(shell):
    with pytest.raises(StatementFailed, match="needs the cell to end with a Spark DataFrame"):
        shell.run("%%emr_spark -o number\n41 + 1")


def test_dash_o_through_nbclient_in_a_real_kernel(backend, demo):
    import nbformat
    from nbclient import NotebookClient

    start = (
        f"%emr_session start --application-id {demo_app_id(demo)} --role {session_role(demo)} "
        "--key alias/emr-analytics"
    )
    cells = [
        "%load_ext emr_cmk_notebook",
        start,
        "%%emr_spark -o head -n 10\nspark.range(100000).selectExpr("
        "'id', \"TIMESTAMP'2024-01-01 00:00:00 UTC' AS at\")",
        "print(len(head), head['id'].dtype, head['at'].dtype)",
        "%emr_session stop --all",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    with pointed_at(backend):
        NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    shown = [
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.outputs
        if output.get("output_type") == "stream"
    ]
    assert "10 of 100,000 rows; -n N for more\n" in shown
    assert "10 int64 datetime64[us, UTC]\n" in shown
