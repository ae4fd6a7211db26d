"""Loading the extension: light, and errors shown as one line in a real kernel."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_notebook

HEAVY = ("boto3", "botocore", "pandas", "pyarrow", "pyspark", "moto")


def test_load_ext_imports_nothing_heavy():
    code = (
        "import sys, json\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'emr_cmk_notebook')\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_config_changes_echo_previous_and_new(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")
    ip.run_line_magic("config", "EmrCmk.default_role = 'arn:aws:iam::111122223333:role/r'")
    out = capsys.readouterr().out
    assert "EmrCmk.default_role: None -> 'arn:aws:iam::111122223333:role/r'" in out


def test_a_negative_idle_notice_is_refused_and_keeps_the_setting():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets import TraitError

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")
    magics = ip.magics_manager.registry["EmrCmk"]
    with pytest.raises(TraitError, match="0 \\(no notice\\) or more minutes"):
        magics.idle_notice_minutes = -5
    assert magics.idle_notice_minutes == 30


def test_magic_errors_fail_the_cell_with_one_line_in_a_kernel(tmp_path):
    notebook = new_notebook(
        cells=[
            new_code_cell("%load_ext emr_cmk_notebook"),
            new_code_cell("%emr_app update --application-id x"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    client = NotebookClient(notebook, timeout=120, kernel_name="python3")
    with pytest.raises(CellExecutionError):
        client.execute()
    error = next(o for o in notebook.cells[1].outputs if o["output_type"] == "error")
    assert error["ename"] == "MagicUsageError"
    assert len(error["traceback"]) == 1
    assert "nothing to change" in error["traceback"][0]
    nbformat.validate(notebook)
