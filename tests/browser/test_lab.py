"""In a real browser: the quickstart runs in JupyterLab and the launcher starts a session."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import answer_dialog

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ALL_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
LAUNCHER_CELL = '%config EmrCmk.default_key = "alias/emr-analytics"\n%emr_session'


def test_quickstart_and_launcher_in_jupyterlab(lab, browser_context, artifacts, capsys) -> None:
    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    page.goto(lab.page_url("lab/tree/01_quickstart.ipynb"))
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=120_000)

    # "Run All Cells" acts on the focused notebook: focus it first, and retry once if the first
    # code cell did not start (the menu item is inert while another panel has the focus).
    first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for _ in range(2):
        answer_dialog(page)
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.locator(".lm-MenuBar-item", has_text="Run").click()
        page.locator(".lm-Menu-item", has_text=re.compile(r"^Run All Cells")).click()
        try:
            page.wait_for_function(
                "p => /\\[(\\*|\\d+)\\]/.test(p.textContent)",
                arg=first_prompt.element_handle(),
                timeout=30_000,
            )
            break
        except Exception:
            page.keyboard.press("Escape")
    try:
        page.wait_for_function(ALL_RAN, timeout=600_000)
    except Exception:
        page.screenshot(path=str(Path(artifacts) / "failed-run-all.png"), full_page=True)
        with capsys.disabled():
            print("\nPAGE TEXT:\n", page.locator(".jp-Notebook").inner_text()[:6000])
        raise

    cells = page.locator(".jp-CodeCell")
    started = cells.filter(
        has_text="%emr_session start --application-id demo-app --key alias/emr-analytics"
    )
    assert re.search(r"state\b.*\bidle", started.locator(".jp-OutputArea").inner_text())
    spark = cells.filter(has_text="spark.range(1000).count()").locator(".jp-OutputArea")
    assert "1000" in spark.inner_text()

    # A new cell at the end opens the launcher; its Start button starts a real session.
    cells.last.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text(LAUNCHER_CELL)
    page.keyboard.press("Shift+Enter")
    launcher = cells.filter(has_text="default_key").locator(".jp-OutputArea")
    start = launcher.locator("button.widget-button", has_text="Start")
    start.wait_for()
    page.wait_for_function("b => !b.disabled", arg=start.element_handle(), timeout=120_000)
    start.click()
    status = launcher.get_by_text(re.compile(r"took \d+\.\d s"))
    status.wait_for(timeout=300_000)
    assert re.match(r"idle · session \S+ on \S+, disk key ", status.inner_text())
    screenshot = Path(artifacts) / "quickstart-launcher.png"
    launcher.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot))
    with capsys.disabled():
        print(f"\nbrowser screenshot: {screenshot}")

    launcher.locator("button.widget-button", has_text="Stop").click()
    launcher.get_by_text(re.compile(r"^stopped · ")).wait_for(timeout=120_000)
