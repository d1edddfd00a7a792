"""The report page in a real browser: headless Chromium, offline.

Skipped when Chromium or its driver is missing, unless
DEALTRAIL_REQUIRE_BROWSER=1 (as in CI), where a missing browser fails.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from engine.application import DealTrail
from engine.report.html import render_page
from engine.report.model import build_report
from engine.rules import RuleSet
from tests.conftest import Clock
from tests.factories import import_examples

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
KEY = "BRIGHTWATER-2026-01"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if absent:
        return "headless Chromium is not installed: no " + ", ".join(absent)
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    problem = _missing()
    if problem is not None:
        if os.environ.get("DEALTRAIL_REQUIRE_BROWSER") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # No network: names resolve nowhere and any proxy use goes nowhere.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability(
        "goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"}
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser-report")
    clock = Clock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    rules = RuleSet()
    with DealTrail(f"sqlite:///{folder}/examples.db", clock=clock) as app:
        import_examples(app)
        audited = app.audit(KEY, rules)
        built = build_report(
            app.history(KEY),
            rules,
            audited.result.meta.evaluated_at,
            account=app.account_context(KEY, rules),
        )
    path = folder / f"{KEY}.html"
    path.write_text(render_page(built, position=audited.position))
    return path


def test_the_page_replays_offline_without_script_errors(
    browser: Any, page: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    for log in ("browser", "performance"):
        browser.get_log(log)  # drain what the start page logged
    browser.get(page.as_uri())

    def text(element_id: str) -> str:
        result: str = browser.find_element(By.ID, element_id).text
        return result

    # The page opens at the last step: the deal as it was lost.
    assert text("st-stage") == "proposal"
    assert text("step-label") == "Step 25 of 25: Wed 11 Feb 2026 09:45"

    scrubber = browser.find_element(By.ID, "scrubber")
    scrubber.send_keys(Keys.HOME)
    assert text("st-stage") == "prospecting"
    for _ in range(5):
        scrubber.send_keys(Keys.ARROW_RIGHT)
    assert text("step-label") == "Step 6 of 25: Tue 13 Jan 2026 11:45"
    assert text("st-stage") == "qualification"
    browser.find_element(By.CSS_SELECTOR, "button[data-step=next]").click()
    assert text("st-stage") == "qualification"
    assert "Raj Patel" in text("st-engaged")
    # What lies after the step is faded; what came before is not.
    faded = browser.execute_script(
        "return [document.getElementById(arguments[0]).classList.contains('later'),"
        " document.getElementById(arguments[1]).classList.contains('later')]",
        *_touch_marks(browser, "brightwater-t02", "brightwater-t06"),
    )
    assert faded == [False, True]

    # Focus shows a mark's details.
    flag = browser.find_element(By.CSS_SELECTOR, ".mark.flag")
    browser.execute_script("arguments[0].focus()", flag)
    assert text("details-label").startswith("Warning 1, high: slow follow up")

    # Everything was imported at once, so the known clock has one step.
    browser.find_element(By.CSS_SELECTOR, "input[value=known]").click()
    assert text("step-label") == "Step 1 of 1: Tue 1 Dec 2026 12:00"
    assert text("st-stage") == "proposal"

    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 50, "the screenshot is (nearly) one flat colour"

    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    fetched = {
        message["params"]["request"]["url"].split(":", 1)[0]
        for entry in browser.get_log("performance")
        if (message := json.loads(entry["message"])["message"])["method"]
        == "Network.requestWillBeSent"
    }
    assert fetched <= {"file", "data"}


def _touch_marks(browser: Any, *touchpoints: str) -> list[str]:
    """The ids of the marks of these touchpoints, read from the page's data."""
    marks: dict[str, Any] = browser.execute_script(
        "return JSON.parse(document.getElementById('report-data').textContent).marks"
    )
    by_touch = {
        found["details"][-1].removeprefix("Touchpoint "): mark
        for mark, found in marks.items()
    }
    return [by_touch[t] for t in touchpoints]
