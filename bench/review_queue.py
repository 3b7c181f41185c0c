"""The review queue and the dashboard at a million submissions: p50/p95 of `reviews.queue` (what /review/
pages call) and of `dashboard.build` (what /review/dashboard renders).

    .venv/bin/python bench/review_queue.py [--database-url URL] [--rows 1000000] [--runs 200]
        [--dashboard-runs 100] [--only queue|dashboard] [--reuse] [--no-plans]

Uses a PostgreSQL database of its own (default `review_bench` on 127.0.0.1, created if missing,
its schema dropped and migrated on every run with the real migrations), fills it with INSERT ...
SELECT generate_series (half a minute to a minute for a million rows), VACUUM ANALYZEs, then times
the first page and a deep page (a cursor 90 % into the queue) for an admin (all schools) and for a
reviewer of one large, one small and one tiny school, and the dashboard for an admin and for a reviewer
of the large and of the tiny school. Prints a markdown table with the machine and the plans
(EXPLAIN ANALYZE) of the first and the deep page for the tiny-school reviewer (the worst case) and
of the dashboard's statements for the admin and the tiny school. `--reuse` keeps the rows of the
last run (migrating them first, should a migration have been added since).

The data: 7 schools with 2 batches each and skewed sizes (the smallest has 0.15 % of the rows);
submissions spread over a year (so about 8 % of them, ~80,000, fall in the dashboard's 30 days)
and inserted in the order they were created, as in production (ids follow created_at, the last
30 days sit in the table's last pages); 40 % waiting (未审核), 5 % claimed (审核中), the rest
decided or earlier states. All but the cancelled ones were paid within half an hour of being
created; decided ones were decided 1 hour to 10 days after payment (most within two days). Every
in-flight attempt has its own user (the one-attempt-in-flight index).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import cpu_model
from sqlalchemy import create_engine, text

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/review_bench"
# Share of rows per school (the last is the "small school"): scoping filters rows, so a small school
# is the worst case for a scoped query on the (status, created_at, id) index.
SCHOOL_SHARES = (0.35, 0.25, 0.2, 0.12, 0.0685, 0.01, 0.0015)
PAGE = 50
# The migrations carry ix_submissions_batch_id_status_created_at: a reviewer's rare school is read
# directly instead of filtering the global (status, created_at, id) index (measured here: the
# tiny school's first page went from 58 ms to 5 ms p95).


def ensure_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def fill(conn: Any, rows: int) -> None:
    """Schools, batches, users, one identity and photo per school, then `rows` submissions."""
    t0 = time.perf_counter()
    conn.execute(
        text(
            "INSERT INTO schools (code, name, province, city, created_at) "
            "SELECT 'S' || g, '测试学校' || g, '湖南省', '长沙市', now() FROM generate_series(1, :n) g"
        ),
        {"n": len(SCHOOL_SHARES)},
    )
    conn.execute(
        text(
            "INSERT INTO batches (school_id, name, education, opens_at, closes_at, fee_fen, review_days_min,"
            " review_days_max, photo_spec, created_at) "
            "SELECT s.id, '批次' || b, '成人教育', now() - interval '400 days', now() + interval '100 days',"
            " 200, 7, 10, '{}'::json, now() FROM schools s, generate_series(1, 2) b"
        )
    )
    conn.execute(
        text(
            "INSERT INTO users (openid, subscribed, is_operator, created_at, updated_at) "
            "SELECT 'o-bench-' || g, true, false, now(), now() FROM generate_series(1, :n) g"
        ),
        {"n": rows},
    )
    first_user = conn.scalar(text("SELECT min(id) FROM users"))
    conn.execute(
        text(
            "INSERT INTO identities (user_id, doc_type, number_hash, number_enc, name_enc, active,"
            " created_at) VALUES (:u, 'resident_id', 'bench', 'x', 'x', false, now())"
        ),
        {"u": first_user},
    )
    conn.execute(
        text(
            "INSERT INTO photos (user_id, batch_id, source, original_key, original_sha256, original_bytes,"
            " passed, checks, fixes, created_at) "
            "SELECT :u, min(id), 'h5', 'k', 's', 1, true, '[]'::json, '[]'::json, now() FROM batches"
        ),
        {"u": first_user},
    )
    # Cumulative shares → the batch of row g (two batches per school, alternating).
    cuts = []
    acc = 0.0
    for share in SCHOOL_SHARES:
        acc += share
        cuts.append(acc)
    case = " ".join(f"WHEN r < {c:.4f} THEN {i}" for i, c in enumerate(cuts))
    conn.execute(
        text(
            f"""
            INSERT INTO submissions (user_id, batch_id, photo_id, identity_id, status, verify_attempts,
                                     claimed_by_id, claim_expires_at, created_at, updated_at, paid_at,
                                     decided_at)
            SELECT :u0 + g - 1,
                   b.ids[(CASE {case} ELSE {len(cuts) - 1} END) * 2 + 1 + (g % 2)],
                   p.id, i.id,
                   CASE WHEN s < 0.40 THEN 'pending_review'
                        WHEN s < 0.45 THEN 'in_review'
                        WHEN s < 0.80 THEN 'approved'
                        WHEN s < 0.88 THEN 'returned'
                        WHEN s < 0.90 THEN 'refused'
                        WHEN s < 0.95 THEN 'verify_failed'
                        ELSE 'cancelled' END,
                   0, NULL,
                   CASE WHEN s >= 0.40 AND s < 0.45 THEN now() + interval '10 minutes' END,
                   ts, ts, paid,
                   -- decided 1 h to 10 days after payment, most within a day or two (never in the future)
                   CASE WHEN s >= 0.45 AND s < 0.90
                        THEN least(date_trunc('second', now()),
                                   paid + date_trunc('second', interval '1 hour' * (1 + 239 * d * d))) END
            FROM (SELECT g, r, s, d, ts,
                         -- paid within half an hour of creating the attempt; 已取消 ones never paid
                         CASE WHEN s < 0.95
                              THEN least(date_trunc('second', now()),
                                         ts + interval '1 second' * floor(w * 1800)) END AS paid
                  FROM (SELECT g, random() AS r, random() AS s, random() AS w, random() AS d,
                               -- a year of submissions; whole seconds, so many share a timestamp
                               date_trunc('second', now() - interval '365 days' * random()) AS ts
                        FROM generate_series(1, :n) g) raw) x,
                 (SELECT array_agg(id ORDER BY school_id, id) AS ids FROM batches) b,
                 (SELECT min(id) AS id FROM photos) p,
                 (SELECT min(id) AS id FROM identities) i
            -- in the order they were created, as the application inserts them: ids follow created_at
            -- and the last 30 days sit in the table's last pages
            ORDER BY ts
            """
        ),
        {"u0": first_user, "n": rows},
    )
    conn.execute(text("ANALYZE"))
    print(f"filled {rows:,} submissions in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def timed(func: Callable[[], Any], runs: int) -> tuple[float, float]:
    for _ in range(5):
        func()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        func()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def explained(func: Callable[[], Any], match: Callable[[str], bool]) -> list[str]:
    """EXPLAIN ANALYZE of the statements `func` runs that `match` selects: run on the same DBAPI cursor
    with the same parameters just before the statement itself."""
    from sqlalchemy import event

    from app.extensions import db

    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if match(statement):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)
            plans.append("".join(row[0] + "\n" for row in cursor.fetchall()))

    event.listen(db.engine, "before_cursor_execute", explain)
    try:
        func()
    finally:
        event.remove(db.engine, "before_cursor_execute", explain)
        db.session.rollback()
    return plans


def bench_queue(schools: list[int], runs: int) -> tuple[list[str], list[str]]:
    from app.extensions import db
    from app.services import reviews

    scopes: list[tuple[str, set[int] | None]] = [
        ("admin (all schools)", None),
        (f"reviewer, large school ({SCHOOL_SHARES[0]:.0%})", {schools[0]}),
        (f"reviewer, small school ({SCHOOL_SHARES[-2]:.0%})", {schools[-2]}),
        (f"reviewer, tiny school ({SCHOOL_SHARES[-1]:.2%})", {schools[-1]}),
    ]
    lines = [
        f"Review queue, page of {PAGE}, {runs} runs each.",
        "",
        "| who | page | waiting rows in scope | p50 ms | p95 ms |",
        "|---|---|---:|---:|---:|",
    ]
    worst = 0.0
    deep: tuple[Any, Any] | None = None
    for who, scope in scopes:
        everything = reviews.queue(db.session, school_ids=scope, limit=1)
        assert everything.items
        waiting = db.session.scalar(
            text(
                "SELECT count(*) FROM submissions s JOIN batches b ON b.id = s.batch_id "
                "WHERE s.status IN ('pending_review', 'in_review') AND (:all OR b.school_id = ANY(:ids))"
            ),
            {"all": scope is None, "ids": list(scope or [0])},
        )
        # 90 % deep, but leaving a page after it; a small fill may hold less than a page.
        deep_offset = max(0, min(int(waiting * 0.9), waiting - PAGE - 1))
        deep_row = db.session.execute(
            text(
                "SELECT s.created_at, s.id FROM submissions s JOIN batches b ON b.id = s.batch_id "
                "WHERE s.status IN ('pending_review', 'in_review') AND (:all OR b.school_id = ANY(:ids)) "
                "ORDER BY s.created_at, s.id OFFSET :o LIMIT 1"
            ),
            {
                "all": scope is None,
                "ids": list(scope or [0]),
                "o": deep_offset,
            },
        ).one()
        deep = (deep_row[0], deep_row[1])
        pages = (("first", None, waiting), ("deep (90 %)", deep, waiting - deep_offset - 1))
        for page, cursor, after in pages:

            def run(scope: set[int] | None = scope, cursor: Any = cursor, after: int = after) -> None:
                page_ = reviews.queue(db.session, school_ids=scope, after=cursor, limit=PAGE)
                assert len(page_.items) == min(PAGE, after)  # a full page, unless fewer wait
                db.session.rollback()

            p50, p95 = timed(run, runs)
            worst = max(worst, p95)
            lines.append(f"| {who} | {page} | {waiting:,} | {p50:.2f} | {p95:.2f} |")
    lines.append("")
    lines.append(f"Worst p95: {worst:.2f} ms (target < 100 ms).")
    # The plans, for the record: the tiny-school reviewer's pages (the worst case); `deep` is its cursor.
    plans: list[str] = []
    for label, cursor_ in (("first page", None), ("deep page", deep)):
        plans.append(f"\n### queue, tiny-school reviewer, {label}\n")
        for plan in explained(
            lambda c=cursor_: reviews.queue(db.session, school_ids={schools[-1]}, after=c, limit=PAGE),
            lambda statement: "UNION ALL" in statement,
        ):
            plans.append(f"```\n{plan}```\n")
    return lines, plans


def bench_dashboard(schools: list[int], runs: int) -> tuple[list[str], list[str]]:
    """`dashboard.build` (what /review/dashboard renders) for an admin, a large and a tiny school."""
    from app.extensions import db
    from app.services import dashboard

    scopes: list[tuple[str, set[int] | None]] = [
        ("admin (all schools)", None),
        (f"reviewer, large school ({SCHOOL_SHARES[0]:.0%})", {schools[0]}),
        (f"reviewer, tiny school ({SCHOOL_SHARES[-1]:.2%})", {schools[-1]}),
    ]
    lines = [
        f"Dashboard (`dashboard.build`, last {dashboard.DAYS} Beijing days), {runs} runs each.",
        "",
        "| who | submissions in scope | paid in the period | decided in the period | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for who, scope in scopes:
        board = dashboard.build(db.session, scope)
        db.session.rollback()
        total = sum(row.total for row in board.batches)
        paid = sum(day.submissions for day in board.days)
        # A fill without payments or decisions in the period would time an empty dashboard.
        assert paid and board.decided_in_period and board.median_hours is not None, "refill: no recent work"

        def run(scope: set[int] | None = scope) -> None:
            dashboard.build(db.session, scope)
            db.session.rollback()

        p50, p95 = timed(run, runs)
        worst = max(worst, p95)
        lines.append(
            f"| {who} | {total:,} | {paid:,} | {board.decided_in_period:,} | {p50:.2f} | {p95:.2f} |"
        )
    lines.append("")
    lines.append(f"Worst p95: {worst:.2f} ms (target < 150 ms).")
    plans: list[str] = []
    for label, scope_ in (("admin", None), ("tiny-school reviewer", {schools[-1]})):
        plans.append(f"\n### dashboard, {label}: every statement touching submissions\n")
        for plan in explained(
            lambda s=scope_: dashboard.build(db.session, s),
            lambda statement: "submissions" in statement,
        ):
            plans.append(f"```\n{plan}```\n")
    return lines, plans


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_REVIEW_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200, help="runs per queue page")
    parser.add_argument("--dashboard-runs", type=int, default=100, help="runs per dashboard")
    parser.add_argument("--only", choices=("queue", "dashboard"), help="measure only one of the two")
    parser.add_argument("--no-plans", action="store_true", help="leave out the EXPLAIN ANALYZE plans")
    parser.add_argument("--reuse", action="store_true", help="keep the filled database of the last run")
    args = parser.parse_args()

    from app import create_app
    from app.extensions import db

    if not args.reuse:
        ensure_database(args.database_url)
    app = create_app(
        APP_ENV="testing",
        DATABASE_URL=args.database_url,
        SECRET_KEY="bench-" + "x" * 40,
        REDIS_URL="memory://",
        LOG_LEVEL="WARNING",
    )
    with app.app_context():
        from flask_migrate import upgrade

        if not args.reuse:
            upgrade()
            with db.engine.begin() as conn:
                fill(conn, args.rows)
        else:
            upgrade()  # a migration added since the fill (an index) applies to the kept rows
        # VACUUM too: a fresh fill has no visibility map yet, so index-only scans would visit the heap
        # (autovacuum would set it some minutes later, in the middle of the measurements).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE submissions"))
        args.rows = db.session.scalar(text("SELECT count(*) FROM submissions"))
        server = db.session.scalar(text("SHOW server_version"))
        schools = list(db.session.execute(text("SELECT id FROM schools ORDER BY id")).scalars())
        db.session.rollback()
        lines = [
            f"{args.rows:,} submissions ({datetime.now(UTC):%Y-%m-%d}).",
            f"Machine: {machine()}; PostgreSQL {server}; load average {load()}.",
        ]
        plans: list[str] = []
        if args.only in (None, "queue"):
            queue_lines, queue_plans = bench_queue(schools, args.runs)
            lines += ["", *queue_lines]
            plans += queue_plans
        if args.only in (None, "dashboard"):
            board_lines, board_plans = bench_dashboard(schools, args.dashboard_runs)
            lines += ["", *board_lines]
            plans += board_plans
    print("\n".join(lines))
    if plans and not args.no_plans:
        print("\n" + "".join(plans))


if __name__ == "__main__":
    main()
