"""Seat assignment at scale: `seating.assign` (what `flask exams assign-seats` runs) seating 100,000
candidates over 500 sites, then the second run that finds everyone seated.

    .venv/bin/python bench/seat_assignment.py [--database-url URL] [--candidates 100000] [--sites 500]
        [--room-size 30]

Without --database-url: a fresh SQLite file in a temporary folder (the embedded mode); with one
(PostgreSQL: an empty database of its own, its schema dropped first) the same on PostgreSQL. The
database is migrated with the real migrations and filled with Core executemany inserts: one school and
batch (no course selection, so the service fills the sites), 500 sites of equal capacity (10 % spare),
and per candidate a user, an identity, a photo and an approved paid attempt. Only the assignment is
timed. Target: under 30 s for the first run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import cpu_model
from sqlalchemy import create_engine, func, insert, select, text

CHUNK = 10_000


def fill(candidates: int, sites: int, room_size: int) -> int:
    from app.extensions import db
    from models import Batch, ExamSite, Flow, Identity, Photo, School, Submission, SubmissionStatus, User

    now = datetime.now(UTC)
    school = School(code="10496", name="武汉轻工大学", province="湖北省", city="武汉市")
    db.session.add(school)
    db.session.flush()
    batch = Batch(
        school_id=school.id,
        name="2026年成人学士学位外语考试",
        education="成人教育",
        opens_at=now - timedelta(days=30),
        closes_at=now + timedelta(days=30),
        fee_fen=10000,
        photo_spec={},
        flow=Flow.REVIEW_FIRST,
        exam_room_size=room_size,
    )
    db.session.add(batch)
    db.session.flush()
    capacity = -(-candidates * 11 // 10 // sites)
    db.session.execute(
        insert(ExamSite),
        [
            {
                "batch_id": batch.id,
                "district": "武汉市",
                "county": f"区{n % 13}",
                "code": f"{n:04d}",
                "name": f"考点{n}",
                "address": f"地址{n}",
                "capacity": capacity,
            }
            for n in range(1, sites + 1)
        ],
    )
    for start in range(0, candidates, CHUNK):
        size = min(CHUNK, candidates - start)
        first = (db.session.scalar(select(func.max(User.id))) or 0) + 1
        db.session.execute(insert(User), [{"openid": f"o-bench-{start + i}"} for i in range(size)])
        users = range(first, first + size)
        db.session.execute(
            insert(Identity),
            [
                {
                    "user_id": u,
                    "doc_type": "resident_id",
                    "number_hash": f"h{u}",
                    "number_enc": "x",
                    "name_enc": "x",
                }
                for u in users
            ],
        )
        db.session.execute(
            insert(Photo),
            [
                {
                    "user_id": u,
                    "batch_id": batch.id,
                    "source": "h5",
                    "original_key": "k",
                    "original_sha256": "s",
                    "original_bytes": 1,
                    "passed": True,
                    "checks": [],
                    "fixes": [],
                }
                for u in users
            ],
        )
        # Ids follow insertion order in both databases, so the n-th identity and photo are user n's.
        ids = dict(
            db.session.execute(select(Identity.user_id, Identity.id).where(Identity.user_id >= first)).all()
        )
        photos = dict(db.session.execute(select(Photo.user_id, Photo.id).where(Photo.user_id >= first)).all())
        db.session.execute(
            insert(Submission),
            [
                {
                    "user_id": u,
                    "batch_id": batch.id,
                    "photo_id": photos[u],
                    "identity_id": ids[u],
                    "status": SubmissionStatus.APPROVED,
                    "paid_at": now,
                    "decided_at": now,
                }
                for u in users
            ],
        )
        db.session.commit()
    return batch.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--room-size", type=int, default=30)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="seat-bench-")
    url = args.database_url or f"sqlite:///{folder}/bench.db"
    if url.startswith("postgres"):
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()

    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.services import seating
    from models import Batch, ExamSeat

    app = create_app(
        APP_ENV="testing",
        DATABASE_URL=url,
        SECRET_KEY="bench-secret-key-0123456789abcdef01234567",
        LOG_FORMAT="text",
    )
    with app.app_context():
        upgrade()
        t0 = time.perf_counter()
        batch_id = fill(args.candidates, args.sites, args.room_size)
        filled = time.perf_counter() - t0
        batch = db.session.get(Batch, batch_id)
        assert batch is not None
        t0 = time.perf_counter()
        first = seating.assign(db.session, batch)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = seating.assign(db.session, batch)
        second_s = time.perf_counter() - t0
        rows = db.session.scalar(select(func.count()).select_from(ExamSeat))
        distinct = db.session.scalar(
            select(func.count()).select_from(
                select(ExamSeat.site_id, ExamSeat.room_no, ExamSeat.seat_no).distinct().subquery()
            )
        )
    print(f"machine: {cpu_model()}, Python {platform.python_version()}, database {url.split(':')[0]}")
    print(f"fill: {args.candidates:,} candidates, {args.sites} sites in {filled:.1f} s")
    print(f"first run: seated {first.seated:,} (not seated {first.not_seated}) in {first_s:.2f} s")
    print(f"second run: seated {second.seated}, kept {second.kept:,} in {second_s:.2f} s")
    print(f"seat rows {rows:,}, distinct seats {distinct:,}")


if __name__ == "__main__":
    main()
