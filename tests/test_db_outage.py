"""PostgreSQL restarting under the service: no request fails once it is back.

Against a cluster of the test's own (tests/pg_cluster.py), stopped and started by the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask

from app import create_app
from app.extensions import db
from app.services import users
from tests.pg_cluster import Cluster, server_bin

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bin_dir = server_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: outage tests need them")
    own = Cluster(bin_dir)
    own.start()
    app = create_app(APP_ENV="testing", DATABASE_URL=own.url, SECRET_KEY=TEST_SECRET_KEY)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    yield own
    own.remove()


@pytest.fixture
def outage_app(cluster: Cluster) -> Iterator[Flask]:
    app = create_app(APP_ENV="testing", DATABASE_URL=cluster.url, SECRET_KEY=TEST_SECRET_KEY)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_restart_costs_no_request_once_postgresql_is_back(outage_app: Flask, cluster: Cluster) -> None:
    with outage_app.app_context():
        user_id = users.get_or_create(db.session, "o-outage-student").id
        db.session.commit()
    client = outage_app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = user_id  # signed in, as the OAuth callback leaves it
    # Fill the pool with connections that the restart will kill.
    for _ in range(3):
        assert client.get("/readyz").status_code == 200
        assert client.get("/api/v1/me").status_code == 200
    cluster.restart()
    # Every pooled connection is dead now; none of them may surface as an error.
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/v1/me").status_code == 200
    assert client.get("/readyz").get_json()["checks"]["database"] == "ok"


def test_readyz_says_not_ready_while_postgresql_is_down(outage_app: Flask, cluster: Cluster) -> None:
    client = outage_app.test_client()
    assert client.get("/readyz").status_code == 200
    cluster.stop()
    try:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.get_json()["checks"]["database"] == "unreachable"
    finally:
        cluster.start()
    assert client.get("/readyz").status_code == 200


def test_follows_during_an_outage_are_applied_once_it_is_back(outage_app: Flask, cluster: Cluster) -> None:
    # 136 of 667 follows were lost in an 8-second outage: answered "success", the empty reply kept
    # for WeChat's retries, the follow never recorded. Now each is parked and replayed, once.
    from sqlalchemy import func, select
    from wechat_posts import WeChat, event_message

    from app.integrations import redis_client
    from app.wechat import answering, parked
    from models import User

    client = outage_app.test_client()
    wx = WeChat.for_app(outage_app)
    created = int(time.time())
    follows = [event_message(f"o-down-{i}", "subscribe", create_time=created) for i in range(5)]
    follows.append(event_message("o-down-scene", "subscribe", "qrscene_school:10542", create_time=created))
    cluster.stop()
    try:
        for xml in follows:
            signed = wx.post(xml)
            response = client.post(signed.path, data=signed.body, content_type="text/xml")
            assert response.status_code == 200
        retry = wx.post(follows[0])  # a WeChat retry of the first, still during the outage
        assert client.post(retry.path, data=retry.body, content_type="text/xml").status_code == 200
        with outage_app.app_context():
            assert parked.count(redis_client()) == len(follows) + 1
            settings = outage_app.config["SETTINGS"]
            assert answering.replay_parked(settings) == 0  # still down: kept
            assert parked.count(redis_client()) == len(follows) + 1
    finally:
        cluster.start()
    with outage_app.app_context():
        applied = answering.replay_parked(outage_app.config["SETTINGS"])
        assert applied == len(follows) + 1  # the retry's copy finds its message done
        assert parked.count(redis_client()) == 0
        openids = db.session.scalars(select(User.openid).where(User.openid.like("o-down-%"))).all()
        assert sorted(openids) == sorted([f"o-down-{i}" for i in range(5)] + ["o-down-scene"])
        assert db.session.scalar(select(func.count()).select_from(User).where(User.subscribed)) >= 6
    # WeChat's last retry after the replay: answered from the stored reply, nothing applied twice.
    again = wx.post(follows[1])
    assert client.post(again.path, data=again.body, content_type="text/xml").status_code == 200
    with outage_app.app_context():
        count = db.session.scalar(select(func.count()).select_from(User).where(User.openid == "o-down-1"))
        assert count == 1
