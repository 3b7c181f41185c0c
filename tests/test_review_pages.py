"""The staff queue and decision pages through HTTP: scoping, CSRF, claims, decisions, batch approve."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from models import OutboxItem, Photo, Submission, SubmissionStatus
from tests.factories import ID_NUMBER, T0, make_desk, make_waiting, status_and_reason
from tests.staff_pages import csrf_of, sign_in


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


def test_queue_is_scoped_and_oldest_first(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    newer = make_waiting(app, desk.batch_a, "o-a2", T0 + timedelta(hours=2))
    older = make_waiting(app, desk.batch_a, "o-a1", T0)
    other = make_waiting(app, desk.batch_b, "o-b1", T0 - timedelta(hours=1))
    sign_in(client, "rev-a")

    page = client.get("/review/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "审核队列" in html
    assert row_ids(html) == [older, newer]
    assert "西北工业大学" not in html
    # Filtering by another school's id shows nothing rather than that school's rows.
    assert row_ids(client.get(f"/review/?school={desk.school_b}").get_data(as_text=True)) == []
    assert row_ids(client.get(f"/review/?school={desk.school_a}&state=pending").get_data(as_text=True)) == [
        older,
        newer,
    ]
    assert row_ids(client.get("/review/?state=in_review").get_data(as_text=True)) == []
    # Dates are Beijing days: T0 is 16:00 there on 11-01, T0+2h is 18:00 the same day.
    assert row_ids(client.get("/review/?from=2026-11-02").get_data(as_text=True)) == []
    assert row_ids(client.get("/review/?from=2026-11-01&to=2026-11-01").get_data(as_text=True)) == [
        older,
        newer,
    ]

    # Another school's attempt: its page and its photo are out of reach.
    assert client.get(f"/review/submissions/{other}").status_code == 404
    token = csrf_of(client, "/review/")
    assert client.post(f"/review/submissions/{other}/claim", data={"csrf_token": token}).status_code == 404
    with app.app_context():
        from app.api.photos import file_url

        sub = db.session.get(Submission, other)
        assert sub is not None
        link = file_url(sub.photo_id, "normalized", sub.user_id)
    assert client.get(link).status_code == 403

    admin = app.test_client()
    sign_in(admin, "admin")
    assert row_ids(admin.get("/review/").get_data(as_text=True)) == [other, older, newer]
    assert admin.get(link).status_code == 200


def test_keyset_pages_carry_a_cursor(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    ids = [make_waiting(app, desk.batch_a, f"o-{i}", T0 + timedelta(minutes=i)) for i in range(53)]
    sign_in(client, "rev-a")
    first = client.get(f"/review/?school={desk.school_a}").get_data(as_text=True)
    assert row_ids(first) == ids[:50]
    found = re.search(r'href="([^"]+)" id="next-page">下一页', first)
    assert found
    next_url = found.group(1).replace("&amp;", "&")
    assert "after=" in next_url and f"school={desk.school_a}" in next_url
    second = client.get(next_url).get_data(as_text=True)
    assert row_ids(second) == ids[50:]
    assert 'id="next-page"' not in second


def test_claim_and_decide_need_csrf(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    sub = make_waiting(app, desk.batch_a, "o-a1", T0)
    sign_in(client, "rev-a")
    assert client.post(f"/review/submissions/{sub}/claim").status_code == 400
    assert client.post(f"/review/submissions/{sub}/claim", data={"csrf_token": "forged"}).status_code == 400
    assert status_and_reason(app, sub)[0] == SubmissionStatus.PENDING_REVIEW

    token = csrf_of(client, "/review/")
    claimed = client.post(f"/review/submissions/{sub}/claim", data={"csrf_token": token})
    assert claimed.status_code == 303 and claimed.location == f"/review/submissions/{sub}"
    refused = client.post(f"/review/submissions/{sub}/decide", data={"decision": "approve"})
    assert refused.status_code == 400
    assert status_and_reason(app, sub)[0] == SubmissionStatus.IN_REVIEW


def test_claim_race_shows_the_message(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    sub = make_waiting(app, desk.batch_a, "o-a1", T0)
    other = app.test_client()
    sign_in(client, "rev-a")
    sign_in(other, "rev-a2")
    mine, theirs = csrf_of(client, "/review/"), csrf_of(other, "/review/")
    # Both opened the queue while it was free; rev-a2 clicks first.
    assert other.post(f"/review/submissions/{sub}/claim", data={"csrf_token": theirs}).status_code == 303
    lost = client.post(f"/review/submissions/{sub}/claim", data={"csrf_token": mine, "back": "/review/"})
    assert lost.status_code == 303 and lost.location == "/review/"
    page = client.get("/review/").get_data(as_text=True)
    assert "已被其他审核员领取" in page and "rev-a2" in page
    decision = client.get(f"/review/submissions/{sub}").get_data(as_text=True)
    assert "已由 rev-a2 领取" in decision and 'id="decide-form"' not in decision


def test_decision_page_shows_photos_checks_identity_and_history(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    earlier = make_waiting(app, desk.batch_a, "o-a1", T0 - timedelta(days=3))
    with app.app_context():
        found = db.session.get(Submission, earlier)
        assert found is not None
        found.status = SubmissionStatus.RETURNED
        found.status_reason = "背景颜色不符"
        user_id, identity_id = found.user_id, found.identity_id
        db.session.commit()
        photo = Photo(
            **{
                c: getattr(found.photo, c)
                for c in (
                    "batch_id",
                    "source",
                    "original_key",
                    "original_sha256",
                    "original_bytes",
                    "normalized_key",
                    "normalized_bytes",
                    "normalized_format",
                    "width",
                    "height",
                    "passed",
                    "checks",
                    "fixes",
                    "face",
                )
            },
            user_id=user_id,
        )
        db.session.add(photo)
        db.session.flush()
        again = Submission(
            user_id=user_id,
            batch_id=desk.batch_a,
            photo_id=photo.id,
            identity_id=identity_id,
            status=SubmissionStatus.PENDING_REVIEW,
            verification={"result": "match", "provider": "sandbox"},
            created_at=T0,
        )
        db.session.add(again)
        db.session.commit()
        sub = again.id
    sign_in(client, "rev-a")
    html = client.get(f"/review/submissions/{sub}").get_data(as_text=True)
    # Staff match the face to the person: the name in full, the number masked but for its tail.
    assert '<dd id="name">张三</dd>' in html
    assert "**************002X" in html
    assert ID_NUMBER not in html and "1101**" not in html  # reviewers see the tail only
    assert "left: 25.0%; top: 25.0%; width: 50.0%; height: 46.88%" in html  # the face box, scaled
    assert "清晰度" in html and "照片模糊" in html and "人脸" in html
    assert "背景颜色不符" in html and "驳回" in html  # the earlier attempt
    assert "<dt>结果</dt><dd>一致</dd>" in html
    links = re.findall(r'src="(/media/photos/[^"]+)"', html)
    assert len(links) == 2
    for link in links:
        served = client.get(link)
        assert served.status_code == 200 and served.mimetype == "image/jpeg"
    # Someone not signed in (or another school's reviewer) cannot use the links.
    assert app.test_client().get(links[0]).status_code == 403
    stranger = app.test_client()
    sign_in(stranger, "rev-b")
    assert stranger.get(links[0]).status_code == 403

    admin = app.test_client()
    sign_in(admin, "admin")
    assert ID_NUMBER in admin.get(f"/review/submissions/{sub}").get_data(as_text=True)


def test_decide_without_reason_is_refused_then_return_moves_on(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    first = make_waiting(app, desk.batch_a, "o-a1", T0)
    second = make_waiting(app, desk.batch_a, "o-a2", T0 + timedelta(minutes=1))
    sign_in(client, "rev-a")
    token = csrf_of(client, "/review/")
    client.post(f"/review/submissions/{first}/claim", data={"csrf_token": token})

    refused = client.post(
        f"/review/submissions/{first}/decide", data={"csrf_token": token, "decision": "return"}
    )
    assert refused.status_code == 422
    assert "驳回或不通过需要填写原因" in refused.get_data(as_text=True)
    assert status_and_reason(app, first)[0] == SubmissionStatus.IN_REVIEW

    done = client.post(
        f"/review/submissions/{first}/decide",
        data={
            "csrf_token": token,
            "decision": "return",
            "reason_preset": "背景颜色不符",
            "reason_text": "请换白底",
        },
    )
    assert done.status_code == 303 and done.location == f"/review/submissions/{second}"
    assert status_and_reason(app, first) == (SubmissionStatus.RETURNED, "背景颜色不符：请换白底")
    with app.app_context():
        keys = list(db.session.scalars(select(OutboxItem.idempotency_key)))
    assert f"decision:{first}" in keys
    assert "已驳回" in client.get(done.location).get_data(as_text=True)

    # Deciding without a claim is refused with the reason why.
    unclaimed = client.post(
        f"/review/submissions/{second}/decide", data={"csrf_token": token, "decision": "approve"}
    )
    assert unclaimed.status_code == 422 and "请先领取" in unclaimed.get_data(as_text=True)


def test_batch_approve_only_what_the_reviewer_holds(app: Flask, client: FlaskClient) -> None:
    desk = make_desk(app)
    subs = [make_waiting(app, desk.batch_a, f"o-a{i}", T0 + timedelta(minutes=i)) for i in range(3)]
    sign_in(client, "rev-a")
    token = csrf_of(client, "/review/")
    for sub in subs[:2]:
        client.post(f"/review/submissions/{sub}/claim", data={"csrf_token": token})
    html = client.get("/review/").get_data(as_text=True)
    boxes = [int(i) for i in re.findall(r'name="ids" value="(\d+)"', html)]
    assert boxes == subs[:2]  # only the rows the reviewer holds can be ticked

    refused = client.post(
        "/review/batch-approve", data={"csrf_token": token, "ids": [str(s) for s in subs], "back": "/review/"}
    )
    assert refused.status_code == 303
    assert "只能批量通过自己已领取的提交" in client.get("/review/").get_data(as_text=True)
    assert all(status_and_reason(app, s)[0] != SubmissionStatus.APPROVED for s in subs)

    assert client.post("/review/batch-approve", data={"ids": [str(subs[0])]}).status_code == 400

    done = client.post(
        "/review/batch-approve",
        data={"csrf_token": token, "ids": [str(s) for s in subs[:2]], "back": "/review/"},
    )
    assert done.status_code == 303
    assert "已批量通过 2 条" in client.get("/review/").get_data(as_text=True)
    assert [status_and_reason(app, s)[0] for s in subs] == [
        SubmissionStatus.APPROVED,
        SubmissionStatus.APPROVED,
        SubmissionStatus.PENDING_REVIEW,
    ]

    admin = app.test_client()
    sign_in(admin, "admin")
    admin_token = csrf_of(admin, "/review/")
    assert (
        admin.post(
            "/review/batch-approve", data={"csrf_token": admin_token, "ids": [str(subs[2])]}
        ).status_code
        == 303
    )
    assert status_and_reason(app, subs[2])[0] == SubmissionStatus.APPROVED
