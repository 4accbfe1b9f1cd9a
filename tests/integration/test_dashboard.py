"""The dashboard answers while a workflow runs; a screenshot in headless Chromium if installed."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def _status_url(client) -> str:
    link = client.dashboard_link
    assert link.startswith("http://127.0.0.1:"), link  # bound to this machine only
    return link.rsplit("/", 1)[0] + "/status"


def _run_workflow(client, path):
    from pipeline.simulate import StudioPlan
    from pipeline.simulate.writer import simulate_to_store

    simulate_to_store(StudioPlan(minutes_per_session=(0.3, 0.2), seed=11), str(path), client, quiet=True)


@pytest.mark.cluster
def test_dashboard_status_page_while_a_workflow_runs(client, tmp_path):
    url = _status_url(client)
    errors = []
    worker = threading.Thread(target=lambda: _safe(errors, _run_workflow, client, tmp_path / "a.zarr"))
    worker.start()
    fetched_while_running = []
    try:
        while worker.is_alive():
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = resp.read().decode(errors="replace")
                if worker.is_alive():
                    fetched_while_running.append((resp.status, body))
            time.sleep(0.2)
    finally:
        worker.join()
    assert not errors, errors
    assert fetched_while_running, "the workflow ended before the dashboard could be fetched"
    status, body = fetched_while_running[0]
    assert status == 200 and "bokeh" in body.lower()


def _safe(errors, func, *args):
    try:
        func(*args)
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


@pytest.mark.browser
@pytest.mark.cluster
def test_dashboard_screenshot_in_headless_chromium(request, tmp_path):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    url = _status_url(request.getfixturevalue("client"))  # start a cluster only when it can be used
    shot = tmp_path / "dashboard.png"
    subprocess.run([shutil.which("chromium") or CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--window-size=1280,900", "--virtual-time-budget=5000", f"--screenshot={shot}", url],
                   check=True, timeout=120, capture_output=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000  # a rendered page, not a blank one
