"""The web page in a real headless Chromium against the real server on loopback: ask, watch the verdict arrive with
each evidence item beside the tool result it cites, and approve as a signed-in approver (an approver the policy
does not list is refused). Screenshots are written to tests/artifacts/."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.serving import TOKENS, app_for, isolate_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = Path(__file__).parent / "artifacts"
QUESTION = "why are shipments not going out?"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                 reason="needs Debian's chromium and chromium-driver (bash .ci/run installs them)")]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    isolate_server(tmp_path, monkeypatch)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app_for(tmp_path), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _wait(condition: Any, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = condition()
        except Exception:  # the page is between loads
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _sign_in(driver: Any, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/ui/approvals")
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(TOKENS[name])
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    _wait(lambda: f"signed in as {name}" in driver.find_element(By.ID, "who").text, what=f"sign-in as {name}")


def test_ask_see_the_cited_evidence_and_approve_as_a_signed_in_approver(server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(server + "/")
    browser.find_element(By.ID, "question").send_keys(QUESTION)
    browser.find_element(By.ID, "remediate").click()
    browser.find_element(By.CSS_SELECTOR, "#ask button[type=submit]").click()
    _wait(lambda: browser.find_elements(By.ID, "evidence"), what="the verdict")
    rows = browser.find_elements(By.CSS_SELECTOR, "#evidence table tr")[1:]
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    browser.save_screenshot(str(ARTIFACTS / "web-verdict.png"))
    assert "INCIDENT" in browser.find_element(By.ID, "verdict").text
    assert "queue-master" in browser.find_element(By.ID, "verdict").text
    assert len(cells) >= 4
    for signal, claim, call, returned in cells:
        assert claim and call and returned and "not in the trace" not in returned, (signal, call)
    assert any("get_queue_stats" in call and "shipping-task" in returned for _, _, call, returned in cells)
    assert "kubectl -n sock-shop scale deployment/queue-master --replicas=1" in browser.find_element(
        By.ID, "remediation").text

    _sign_in(browser, server, "mallory")
    browser.find_element(By.CSS_SELECTOR, "[data-approve]").click()
    refusal = _wait(lambda: [m.text for m in browser.find_elements(By.CSS_SELECTOR, ".message.error") if m.text],
                    what="the refusal")
    assert "403" in refusal[0] and "mallory" in refusal[0]
    assert "pending" in browser.find_element(By.ID, "approvals").text.lower()

    _sign_in(browser, server, "oncall-sre")
    browser.find_element(By.CSS_SELECTOR, "[data-approve]").click()
    _wait(lambda: "executed" in browser.find_element(By.ID, "approvals").text.lower()
          and not browser.find_elements(By.CSS_SELECTOR, "[data-approve]"), what="the executed approval")
    browser.save_screenshot(str(ARTIFACTS / "web-approved.png"))
    assert "by oncall-sre" in browser.find_element(By.ID, "approvals").text


def test_text_from_a_question_is_shown_never_run(server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    hostile = '<img src=x onerror="document.title=\'pwned\'"> why are shipments not going out?'
    browser.get(server + "/")
    browser.find_element(By.ID, "question").send_keys(hostile)
    browser.find_element(By.CSS_SELECTOR, "#ask button[type=submit]").click()
    _wait(lambda: browser.find_elements(By.ID, "verdict"), what="the verdict")
    assert browser.title != "pwned" and not browser.find_elements(By.CSS_SELECTOR, "main img")
    assert "<img src=x" in browser.find_element(By.TAG_NAME, "h2").text
    browser.get(server + "/")
    assert browser.title != "pwned" and "<img src=x" in browser.find_element(By.ID, "investigations").text
