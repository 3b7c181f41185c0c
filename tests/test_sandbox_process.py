"""The WeChat emulator as its own process, as `make run` starts it: the service's gunicorn (one gthread
worker, eight threads, embedded defaults) and the emulator's gunicorn on another port, for real.

Mounted inside the service, ten students following at the same moment held every request thread,
each waiting for its subscribe event to be served by a thread of the same pool (WeChat's three
tries, then 该公众号暂时无法提供服务). In its own process the emulator never waits on the pool that
serves the calls it triggers. The emulator keeps its state in its own memory here (memory://): the
service reaches its roster over HTTP and its WeChat Pay through the merchant registration file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.sandbox_process import Processes, ready_to_pay, two_processes

FOLLOWERS = 10


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with two_processes(tmp_path_factory.mktemp("two-processes")) as both:
        yield both


def test_the_service_no_longer_serves_the_emulator(processes: Processes) -> None:
    assert requests.get(f"{processes.service}/_sandbox/", timeout=5).status_code == 404
    phone = requests.get(f"{processes.sandbox}/_sandbox/", timeout=5)
    assert phone.status_code == 200 and "证件照核验" in phone.text
    assert requests.get(f"{processes.sandbox}/review/login", timeout=5).status_code == 404


def test_ten_students_follow_at_the_same_moment(processes: Processes) -> None:
    phone = f"{processes.sandbox}/_sandbox/phone"
    openids = [
        requests.post(f"{phone}/users", json={"nickname": f"学生{i}"}, timeout=10).json()["user"]["openid"]
        for i in range(FOLLOWERS)
    ]
    start = threading.Barrier(FOLLOWERS)
    answers: dict[str, tuple[float, dict[str, Any]]] = {}

    def follow(openid: str) -> None:
        start.wait()
        began = time.monotonic()
        response = requests.post(f"{phone}/follow", json={"openid": openid}, timeout=30)
        answers[openid] = (time.monotonic() - began, response.json())

    threads = [threading.Thread(target=follow, args=(openid,)) for openid in openids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == FOLLOWERS
    for seconds, body in answers.values():
        assert (body["failed"], body["tries"]) == (False, 1), body
        replies = [e["text"] for e in body["entries"] if e["direction"] == "out"]
        assert replies and replies[0].startswith("欢迎关注"), body
        # WeChat's first try alone would give up after 5 s; a hang would have hit its 15 s.
        assert seconds < 4, seconds


def test_an_order_at_the_separate_wechat_pay_is_paid_and_its_notification_applied(
    processes: Processes,
) -> None:
    student, photo_id = ready_to_pay(processes, "o-two-processes-payer")
    created = student.http.post(
        f"{processes.service}/api/v1/me/submissions",
        json={"photo_id": photo_id, "channel": "native"},
        headers={"X-CSRFToken": student.token},
        timeout=20,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "awaiting_payment" and body["order"]["code_url"].startswith("weixin://wxpay/")

    paid = requests.post(
        f"{processes.sandbox}/_sandbox/pay/scan",
        json={"code_url": body["order"]["code_url"], "openid": student.openid},
        timeout=10,
    )
    assert paid.status_code == 200, paid.text
    # The emulator's own notifier posts the notification to the service; the service's in-process
    # worker then asks the emulator's roster over HTTP (a number not on it matches).
    deadline = time.monotonic() + 20
    status = body["status"]
    while time.monotonic() < deadline and status != "pending_review":
        time.sleep(0.3)
        status = student.get(f"/api/v1/me/submissions/{body['id']}").json()["status"]
    assert status == "pending_review"
    deliveries = requests.get(f"{processes.sandbox}/_sandbox/pay/_ctl/deliveries", timeout=5).json()
    assert [d["status"] for d in deliveries["deliveries"]] == [204]
    checks = requests.get(f"{processes.sandbox}/_sandbox/roster", timeout=5).json()["checks"]
    assert [c["answer"] for c in checks] == ["match"]
