"""The admin pages in headless Chromium (desktop): the dashboard and the dead-letter page's retry."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from app.jobs import JOBS
from app.jobs.worker import run_due
from tests.factories import STAFF_PASSWORD, T0, make_dead, make_desk, make_waiting


def test_admin_reads_the_dashboard_and_retries_a_dead_job(
    app: Flask, live_server: Any, desk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivered: list[dict[str, Any]] = []
    monkeypatch.setitem(JOBS, "test.deliver", delivered.append)
    world = make_desk(app)
    make_waiting(app, world.batch_a, "o-dash-1", T0)
    item_id = make_dead(app, "oABCDEFsecretpart")

    desk.goto(live_server.url + "/review/login")
    desk.fill("#username", "admin")
    desk.fill("#password", STAFF_PASSWORD)
    desk.click("button[type=submit]")
    desk.wait_for_url(live_server.url + "/review/")

    desk.get_by_role("link", name="数据看板").click()
    desk.wait_for_url("**/review/dashboard")
    assert desk.locator("#daily-chart").is_visible()
    assert "湖南师范大学" in desk.locator("#batch-table").inner_text()

    desk.get_by_role("link", name="失败任务").click()
    desk.wait_for_url("**/review/outbox")
    row = desk.locator(f"#dead-table tr[data-id='{item_id}']")
    assert "43004" in row.inner_text() and "oABCDEFsecretpart" not in desk.content()
    row.get_by_role("button", name="重试").click()
    desk.wait_for_url("**/review/outbox")
    assert desk.locator(f"#dead-table tr[data-id='{item_id}']").count() == 0
    assert run_due(app) == 1
    assert [d["submission_id"] for d in delivered] == [7]
