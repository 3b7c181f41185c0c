"""Binding rules, against the real database (the partial unique indexes are part of the rules)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from app.extensions import db
from app.integrations import pii_keyring
from app.services import enrollments, identities
from app.services.id_documents import FieldError
from app.services.identities import IdentityInput
from app.services.schools import BatchData, upsert_batch, upsert_school
from media.spec import PhotoSpec
from models import Base, Enrollment, Identity, User

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
ZHANG = IdentityInput("resident_id", "210101200101010011", "张三")
LI = IdentityInput("resident_id", "11010519491231002X", "李四")


def _user(openid: str) -> int:
    user = User(openid=openid)
    db.session.add(user)
    db.session.commit()
    return user.id


def _batch(opens: datetime, closes: datetime) -> int:
    school = upsert_school(db.session, "10542", "湖南师范大学", "湖南省", "长沙市")
    batch = upsert_batch(
        db.session,
        school,
        BatchData(f"成人教育 {opens:%Y%m%d}", "成人教育", opens, closes, 200, PhotoSpec()),
    )
    db.session.commit()
    return batch.id


@pytest.fixture
def ctx(app: Flask) -> Any:
    with app.app_context():
        yield pii_keyring()
        db.session.remove()


def test_bind_then_view_masked_with_birth_date_and_sex(ctx: Any) -> None:
    user = _user("o-zhang")
    identity = identities.bind(db.session, ctx, user, ZHANG, TODAY)
    shown = identities.view(ctx, identity, TODAY)
    assert shown.number_masked == "2101**********0011"
    assert shown.name_masked == "张*"
    assert (shown.birth_date, shown.sex, shown.doc_label) == (date(2001, 1, 1), "男", "居民身份证")
    assert not shown.locked


def test_a_repeated_submit_changes_nothing_and_a_modification_keeps_history(ctx: Any) -> None:
    user = _user("o-zhang")
    first = identities.bind(db.session, ctx, user, ZHANG, TODAY)
    assert identities.bind(db.session, ctx, user, ZHANG, TODAY).id == first.id
    corrected = identities.bind(
        db.session, ctx, user, IdentityInput("resident_id", ZHANG.id_number, "张叁"), TODAY
    )
    rows = db.session.scalars(select(Identity).order_by(Identity.id)).all()
    assert [(r.active, r.end_reason) for r in rows] == [(False, "modified"), (True, None)]
    assert corrected.id == rows[1].id


def test_binding_and_modifying_store_the_hash_of_the_whole_name(ctx: Any) -> None:
    user = _user("o-zhang")
    first = identities.bind(db.session, ctx, user, ZHANG, TODAY)
    assert first.name_hash == identities.name_lookup_hash(ctx, "张三")
    # However it is typed, the same name has the same hash; a different name, another one.
    assert identities.name_lookup_hash(ctx, " 张 三 ") == first.name_hash
    assert identities.name_lookup_hash(ctx, "张") != first.name_hash
    corrected = identities.bind(
        db.session, ctx, user, IdentityInput("resident_id", ZHANG.id_number, "张叁"), TODAY
    )
    assert corrected.name_hash == identities.name_lookup_hash(ctx, "张叁")
    assert first.name_hash == identities.name_lookup_hash(ctx, "张三")  # the ended row keeps its own
    # Its own domain: never equal to the number's hash, whatever the text.
    assert identities.name_lookup_hash(ctx, ZHANG.id_number) != first.number_hash


def test_backfill_fills_missing_name_hashes_in_batches_and_reruns_as_a_no_op(ctx: Any, runner: Any) -> None:
    users = [_user(f"o-{i}") for i in range(3)]
    for user, data in zip(users, (ZHANG, LI), strict=False):
        identities.bind(db.session, ctx, user, data, TODAY)
    passport = IdentityInput("passport", "E12345678", "John  Smith")
    identities.bind(db.session, ctx, users[2], passport, TODAY)
    # As rows bound before names were hashed look.
    db.session.execute(text("UPDATE identities SET name_hash = NULL"))
    db.session.commit()

    result = runner.invoke(args=["pii", "backfill-name-hashes", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "hashed the names of 3 identities" in result.output
    db.session.expire_all()
    hashes = db.session.scalars(select(Identity.name_hash).order_by(Identity.id)).all()
    assert hashes == [identities.name_lookup_hash(ctx, n) for n in ("张三", "李四", "john smith")]
    again = runner.invoke(args=["pii", "backfill-name-hashes"])
    assert again.exit_code == 0 and "hashed the names of 0 identities" in again.output


def test_the_same_document_cannot_be_bound_to_a_second_account(ctx: Any) -> None:
    identities.bind(db.session, ctx, _user("o-first"), ZHANG, TODAY)
    second = _user("o-second")
    with pytest.raises(identities.IdentityTakenError, match="取消微信绑定"):
        identities.bind(
            db.session, ctx, second, IdentityInput("resident_id", "210101200101010011", "张三"), TODAY
        )
    # 换绑: after 取消微信绑定 on the first account the second may bind it.
    first_user = db.session.scalar(select(User.id).where(User.openid == "o-first"))
    assert first_user is not None
    identities.unbind(db.session, first_user)
    assert identities.bind(db.session, ctx, second, ZHANG, TODAY).user_id == second


def test_two_accounts_binding_one_document_at_once_one_wins(app: Flask) -> None:
    with app.app_context():
        users = [_user(f"o-race-{i}") for i in range(2)]
    results: list[str] = []
    barrier = threading.Barrier(2)

    def bind(user_id: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                identities.bind(db.session, pii_keyring(), user_id, ZHANG, TODAY)
                results.append("bound")
            except identities.IdentityTakenError:
                results.append("taken")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=bind, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["bound", "taken"]
    with app.app_context():
        assert len(db.session.scalars(select(Identity).where(Identity.active)).all()) == 1


def test_locked_identity_cannot_be_modified_or_unbound(ctx: Any) -> None:
    user = _user("o-zhang")
    identities.bind(db.session, ctx, user, ZHANG, TODAY)
    identities.lock(db.session, user)
    db.session.commit()
    with pytest.raises(identities.IdentityLockedError, match="不能再修改"):
        identities.bind(db.session, ctx, user, LI, TODAY)
    with pytest.raises(identities.IdentityLockedError):
        identities.unbind(db.session, user)


def test_field_errors_change_nothing(ctx: Any) -> None:
    user = _user("o-zhang")
    for bad, field in [
        (IdentityInput("resident_id", "210101200101010012", "张三"), "id_number"),
        (IdentityInput("resident_id", ZHANG.id_number, "Zhang San"), "name"),
        (IdentityInput("drivers_licence", ZHANG.id_number, "张三"), "id_type"),
    ]:
        with pytest.raises(FieldError) as err:
            identities.bind(db.session, ctx, user, bad, TODAY)
        assert err.value.field == field
    assert db.session.scalars(select(Identity)).all() == []


def test_unbind_also_ends_the_school_link(ctx: Any) -> None:
    user = _user("o-zhang")
    identities.bind(db.session, ctx, user, ZHANG, TODAY)
    enrollments.link(db.session, user, _batch(NOW - timedelta(days=1), NOW + timedelta(days=90)), NOW)
    identities.unbind(db.session, user)
    assert enrollments.active(db.session, user) is None
    ended = db.session.scalars(select(Enrollment)).one()
    assert ended.end_reason == "unbound"
    with pytest.raises(identities.IdentityNotBoundError):
        identities.unbind(db.session, user)


def test_linking_needs_an_identity_and_an_open_batch(ctx: Any) -> None:
    user = _user("o-zhang")
    open_batch = _batch(NOW - timedelta(days=1), NOW + timedelta(days=90))
    closed_batch = _batch(NOW - timedelta(days=200), NOW - timedelta(days=30))
    with pytest.raises(enrollments.IdentityRequiredError):
        enrollments.link(db.session, user, open_batch, NOW)
    identities.bind(db.session, ctx, user, ZHANG, TODAY)
    with pytest.raises(enrollments.BatchClosedError, match=r"已于 2026年10月24日 .* 截止"):
        enrollments.link(db.session, user, closed_batch, NOW)
    with pytest.raises(enrollments.BatchNotFoundError):
        enrollments.link(db.session, user, 999_999, NOW)
    first = enrollments.link(db.session, user, open_batch, NOW)
    assert enrollments.link(db.session, user, open_batch, NOW).id == first.id
    enrollments.lock(db.session, user)
    db.session.commit()
    other = _batch(NOW - timedelta(days=2), NOW + timedelta(days=60))
    with pytest.raises(enrollments.EnrollmentLockedError):
        enrollments.link(db.session, user, other, NOW)


def test_raw_personal_data_is_nowhere_in_the_database_or_logs(
    ctx: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = _user("o-zhang")
    identities.bind(db.session, ctx, user, ZHANG, TODAY)
    identities.bind(db.session, ctx, user, LI, TODAY)
    identities.unbind(db.session, user)
    dump = []
    for table in Base.metadata.sorted_tables:
        for row in db.session.execute(text(f"SELECT * FROM {table.name}")):  # noqa: S608
            dump.append(" ".join(str(v) for v in row))
    everything = "\n".join(dump) + "\n" + caplog.text + str([r.__dict__ for r in caplog.records])
    for secret in (ZHANG.id_number, LI.id_number, "张三", "李四", "20010101"):
        assert secret not in everything
    assert "2101**********0011" in caplog.text or any(
        getattr(r, "id_number", "") == "2101**********0011" for r in caplog.records
    )


def test_rotating_keys_re_encrypts_every_identity(app_factory: Any, same_database_app: Any) -> None:
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    def app_with(keys: str) -> Flask:
        app: Flask = same_database_app(PII_ENCRYPTION_KEYS=keys, PII_HMAC_KEY="m" * 32)
        return app

    before = app_factory(PII_ENCRYPTION_KEYS=old, PII_HMAC_KEY="m" * 32)
    with before.app_context():
        user = _user("o-zhang")
        identities.bind(db.session, pii_keyring(), user, ZHANG, TODAY)
        stored_before = db.session.scalars(select(Identity.number_enc)).one()
        name_hash_before = db.session.scalars(select(Identity.name_hash)).one()
        db.session.remove()
    result = app_with(f"{new},{old}").test_cli_runner().invoke(args=["pii", "rotate"])
    assert result.exit_code == 0 and "re-encrypted 1 identities" in result.output
    after = app_with(new)
    with after.app_context():
        identity = identities.active(db.session, user)
        assert identity is not None and identity.number_enc != stored_before
        assert identities.view(pii_keyring(), identity, TODAY).number_masked == "2101**********0011"
        # The lookup key (PII_HMAC_KEY) did not change, so neither did the name's hash.
        assert identity.name_hash == name_hash_before == identities.name_lookup_hash(pii_keyring(), "张三")
        db.session.remove()
