"""What the decision page is given: the full ID number for admins only, scope, claim state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask

from app.extensions import db
from app.integrations import pii_keyring
from app.services import review_details, reviews
from models import Staff, SubmissionStatus
from tests.factories import ID_NUMBER, T0, Desk, make_desk, make_waiting


def _staff(username: str) -> Staff:
    return db.session.query(Staff).filter_by(username=username).one()


@pytest.fixture
def desk(app: Flask) -> Iterator[Desk]:
    made = make_desk(app)
    with app.app_context():
        yield made
        db.session.remove()


def test_only_admins_get_the_full_number(app: Flask, desk: Desk) -> None:
    sub = make_waiting(app, desk.batch_a, "o-detail-1", T0)
    now = T0 + timedelta(minutes=5)
    for_reviewer = review_details.load(db.session, pii_keyring(), _staff("rev-a"), sub, now)
    assert for_reviewer.full_number is None
    assert for_reviewer.identity.number_masked == "1101**********002X"
    for_admin = review_details.load(db.session, pii_keyring(), _staff("admin"), sub, now)
    assert for_admin.full_number == ID_NUMBER


def test_other_schools_attempts_are_not_found(app: Flask, desk: Desk) -> None:
    sub = make_waiting(app, desk.batch_a, "o-detail-2", T0)
    with pytest.raises(reviews.ReviewNotFoundError):
        review_details.load(db.session, pii_keyring(), _staff("rev-b"), sub, T0)


def test_a_live_claim_is_mine_to_decide_and_blocks_others(app: Flask, desk: Desk) -> None:
    first = make_waiting(app, desk.batch_a, "o-detail-3", T0)
    second = make_waiting(app, desk.batch_a, "o-detail-4", T0 + timedelta(minutes=1))
    now = T0 + timedelta(minutes=5)
    reviews.claim(db.session, _staff("rev-a"), first, now, minutes=30)
    mine = review_details.load(db.session, pii_keyring(), _staff("rev-a"), first, now)
    assert mine.mine and mine.can_decide and not mine.can_claim
    assert mine.next_id == second
    theirs = review_details.load(db.session, pii_keyring(), _staff("rev-a2"), first, now)
    assert not theirs.mine and not theirs.can_decide and not theirs.can_claim
    assert theirs.claimer is not None and theirs.claimer.username == "rev-a"
    # Once the claim has run out the attempt shows as waiting again and anyone may claim it.
    later = review_details.load(db.session, pii_keyring(), _staff("rev-a2"), first, now + timedelta(hours=1))
    assert later.claimer is None and later.can_claim and later.shown_status == SubmissionStatus.PENDING_REVIEW
