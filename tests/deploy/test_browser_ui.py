"""The Dagster UI in a real browser: Playwright drives Debian's Chromium against `dagster dev` on
loopback. Open the asset graph, materialize the python partition of code_files from its page,
wait for success, and see the row count and the passed contract check on the asset page.
Screenshots go to $CODECORPUS_TEST_ARTIFACTS (default .test-artifacts/) for CI to keep."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request

import pytest
from deploy_services import BIN, REPO, dagster_env, free_port, process, wait_for, write_instance

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (test extra)")

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and os.path.exists(p)), None)
ARTIFACTS = os.environ.get("CODECORPUS_TEST_ARTIFACTS") or os.path.join(REPO, ".test-artifacts")


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/system_deps.sh installs it)")
def test_materialize_a_partition_from_the_ui(tmp_path, monkeypatch):
    shots = os.path.join(ARTIFACTS, "browser")
    os.makedirs(shots, exist_ok=True)
    home = str(tmp_path / "home")
    write_instance(home, "dagster.yaml")
    monkeypatch.chdir(home)
    (tmp_path / "no-text").mkdir()
    data = tmp_path / "data"
    env = dagster_env(home, {"CODECORPUS_DATA": str(data), "CODECORPUS_PROFILE": "tiny",
                             "CODECORPUS_LANGUAGES": "python", "CODECORPUS_TEXTCODE_SOURCES": str(tmp_path / "no-text")})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [f"{BIN}/dagster", "dev", "-w", os.path.join(REPO, "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    log = str(tmp_path / "dagster-dev.log")
    with process(cmd, env, log, cwd=home):
        try:
            wait_for(lambda: _up(f"{base}/server_info"), 180, "dagster dev to serve")
        except AssertionError:
            raise AssertionError(open(log, errors="replace").read()[-3000:]) from None
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                _drive(browser.new_page(viewport={"width": 1400, "height": 1000}), base, shots, data)
            finally:
                browser.close()


def _drive(page, base: str, shots: str, data) -> None:
    page.set_default_timeout(60_000)
    # The graph around code_files (the asset page's "View in graph"): lineage with its groups.
    page.goto(f"{base}/assets/code_files", wait_until="domcontentloaded")
    page.get_by_text("View in graph").click()
    page.get_by_text("Global asset lineage").wait_for(state="visible")
    page.get_by_text("code_dedup", exact=True).first.wait_for(state="visible")  # a downstream asset listed
    page.wait_for_timeout(2000)  # let the graph layout settle for the screenshot
    page.screenshot(path=os.path.join(shots, "1-graph.png"))

    # Materialize one partition from the asset page: Materialize… > partition python > Launch 1 run.
    page.goto(f"{base}/assets/code_files", wait_until="domcontentloaded")
    page.get_by_text("Never materialized").wait_for(state="visible")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize code_files")
    dialog.get_by_text("Select a partition or create one").click()
    page.locator("li", has_text="python").last.click()
    page.screenshot(path=os.path.join(shots, "2-launch-dialog.png"))
    dialog.get_by_role("button", name="Launch 1 run").click()
    dialog.wait_for(state="hidden")  # the launch mutation has been answered
    page.wait_for_timeout(3000)  # and its toast shown; navigating away earlier can drop the launch
    page.screenshot(path=os.path.join(shots, "2b-launched.png"))

    def materialized() -> bool:
        page.goto(f"{base}/assets/code_files?partition=python", wait_until="domcontentloaded")
        try:
            page.get_by_text("Row count").wait_for(state="visible", timeout=10_000)
            return True
        except playwright_api.TimeoutError:
            return False

    t0 = time.monotonic()
    try:
        wait_for(materialized, 300, "the code_files[python] run to succeed and the page to show it", interval=2)
    finally:
        page.screenshot(path=os.path.join(shots, "3-asset-page.png"), full_page=True)
    print(f"materialized and shown after {time.monotonic() - t0:.0f}s")

    # The row count on the page is the committed set's.
    with open(os.path.join(str(data), "code_files", "python", "_manifest.json")) as fh:
        rows = json.load(fh)["rows"]
    assert rows > 0
    status = page.locator("div", has=page.get_by_text("Row count", exact=True)).last
    assert str(rows) in status.inner_text(), status.inner_text()
    # The contract check ran and passed: visible on the Checks tab.
    page.get_by_role("tab", name="Checks").click() if page.get_by_role("tab", name="Checks").count() \
        else page.get_by_text("Checks", exact=True).first.click()
    page.get_by_text("rows_match_contract").first.wait_for(state="visible")
    page.get_by_text("Passed").first.wait_for(state="visible")
    page.screenshot(path=os.path.join(shots, "4-checks.png"), full_page=True)
