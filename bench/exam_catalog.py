"""GET /api/v1/batches/<id>/catalog with a large catalogue: p50/p95 through Flask's test client.

    .venv/bin/python bench/exam_catalog.py [--courses 2000] [--sites 300] [--registrations 20000]
        [--runs 300] [--database-url URL]

A database of its own (default: SQLite in a temporary directory, migrated with the real migrations; or
`--database-url postgresql://…`, whose schema is dropped and migrated), one batch whose catalogue is
`--courses` courses over 40 majors (a tenth of them public), `--sites` sites over 14 地州, and
`--registrations` candidates registered at those sites (the seats left are counted per request). Times,
in one process, `--runs` requests of each case, alternated case by case:

- **full**: no If-None-Match, the whole body (200);
- **revalidated**: the browser's If-None-Match (304, no body);
- **reference**: GET /healthz, the smallest request the app answers, measured in the same run — the
  figures of record are the ratios to it (absolute times do not carry from one machine to another).

The first request after an import builds the catalogue (one query per table) and is reported apart
("cold"). Prints a markdown table with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import cpu_model
from sqlalchemy import create_engine, insert, text

SECRET = "bench-secret-key-bench-secret-key-0123456789"


def _app(url: str) -> Any:
    from app import create_app
    from app.extensions import db

    if url.startswith("postgres"):
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app(
        APP_ENV="testing", DATABASE_URL=url, SECRET_KEY=SECRET, REDIS_URL="memory://", LOG_LEVEL="WARNING"
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.session.remove()
    return app


def _fill(app: Any, courses: int, sites: int, registrations: int) -> int:
    """One batch with its catalogue and candidates; returns the batch id."""
    from app.extensions import db
    from app.services import exam_catalog
    from app.services.exam_catalog import Catalog, CourseRow, MajorRow, SiteRow
    from models import Batch, School, User
    from models.exam import ExamRegistration, ExamSite

    now = datetime.now(UTC)
    with app.app_context():
        school = School(code="bench", name="基准学校", province="新疆维吾尔自治区", city="乌鲁木齐市")
        batch = Batch(
            school=school,
            name="基准批次",
            education="自学考试",
            opens_at=now - timedelta(days=30),
            closes_at=now + timedelta(days=30),
            fee_fen=3500,
            photo_spec={},
            exam_selection=True,
        )
        db.session.add_all([school, batch])
        db.session.commit()
        majors = [
            MajorRow(f"M{i:04d}", f"专业{i}", "须考合格全部课程，总学分不少于 70 学分。" * 3, i % 10 == 0)
            for i in range(40)
        ]
        first = datetime(2027, 4, 1, 1, 0, tzinfo=UTC)
        rows = [
            CourseRow(
                f"{i:05d}",
                f"课程名称{i}",
                None if i % 10 == 0 else majors[i % 40].code,
                first + timedelta(days=i % 14, hours=5 * (i % 2)),
                first + timedelta(days=i % 14, hours=5 * (i % 2) + 2, minutes=30),
                3500,
            )
            for i in range(courses)
        ]
        places = [
            SiteRow(f"地州{i % 14}", f"县市{i % 60}", f"S{i:05d}", f"第{i}考点", f"某路 {i} 号", 500)
            for i in range(sites)
        ]
        exam_catalog.replace_catalog(db.session, batch, Catalog(places, majors, rows))
        site_ids = [s.id for s in db.session.query(ExamSite).filter_by(batch_id=batch.id)]
        db.session.execute(insert(User), [{"openid": f"o-bench-{i}"} for i in range(registrations)])
        user_ids = [u.id for u in db.session.query(User.id)]
        db.session.execute(
            insert(ExamRegistration),
            [
                {
                    "user_id": uid,
                    "batch_id": batch.id,
                    "site_id": site_ids[n % len(site_ids)],
                    "created_at": now,
                    "updated_at": now,
                }
                for n, uid in enumerate(user_ids)
            ],
        )
        db.session.commit()
        batch_id = batch.id
        db.session.remove()
        return batch_id


def _time(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=2000)
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--registrations", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="exam-catalog-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        app = _app(url)
        batch_id = _fill(app, args.courses, args.sites, args.registrations)
        client = app.test_client()
        path = f"/api/v1/batches/{batch_id}/catalog"

        cold_answer: list[Any] = []
        cold = _time(lambda: cold_answer.append(client.get(path)))
        first = cold_answer[0]
        assert first.status_code == 200, first.status_code
        etag = first.headers["ETag"]
        size = len(first.data)

        def full() -> None:
            assert client.get(path).status_code == 200

        def revalidated() -> None:
            assert client.get(path, headers={"If-None-Match": etag}).status_code == 304

        def reference() -> None:
            assert client.get("/healthz").status_code == 200

        cases: dict[str, Callable[[], None]] = {
            "full": full,
            "revalidated": revalidated,
            "reference": reference,
        }
        for call in cases.values():  # warm up
            for _ in range(5):
                call()
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, call in cases.items():
                times[name].append(_time(call))

    ref = statistics.median(times["reference"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"GET {'/api/v1/batches/<id>/catalog'}: {args.courses} courses, {args.sites} sites, "
        f"{args.registrations} registrations, {args.runs} runs a case; body {size / 1024:.0f} KiB"
    )
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}, {os.cpu_count()} CPUs, load {load:.1f}, "
        f"Python {platform.python_version()}, {'PostgreSQL' if url.startswith('postgres') else 'SQLite'}"
    )
    print()
    print("| case | p50 | p95 | p50 ratio to /healthz | p95 ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in ("full", "revalidated", "reference"):
        p50, p95 = _pct(times[name], 50), _pct(times[name], 95)
        print(f"| {name} | {p50:.2f} ms | {p95:.2f} ms | {p50 / ref:.1f} | {p95 / ref:.1f} |")
    print(f"| cold (first request after the import) | {cold:.1f} ms | | | |")


if __name__ == "__main__":
    main()
