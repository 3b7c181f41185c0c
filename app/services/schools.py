"""Schools and batches: creating and updating them (imports, demo data), and reading them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from media.spec import PhotoSpec
from models import Batch, School


@dataclass(frozen=True)
class BatchData:
    name: str
    education: str
    opens_at: datetime
    closes_at: datetime
    fee_fen: int
    photo_spec: PhotoSpec
    review_days_min: int = 7
    review_days_max: int = 10


class BatchDataError(ValueError):
    """A batch that cannot exist (closes before it opens, negative fee)."""


def upsert_school(session: Session, code: str, name: str, province: str, city: str) -> School:
    """Create or update a school by its code (no commit: part of the caller's unit of work)."""
    school = session.scalar(select(School).where(School.code == code))
    if school is None:
        school = School(code=code, name=name, province=province, city=city)
        session.add(school)
    else:
        school.name, school.province, school.city = name, province, city
    session.flush()
    return school


def upsert_batch(session: Session, school: School, data: BatchData) -> Batch:
    """Create or update a batch by (school, name) (no commit)."""
    if data.closes_at <= data.opens_at:
        raise BatchDataError(f"batch {data.name!r} closes before it opens")
    if data.fee_fen < 0:
        raise BatchDataError(f"batch {data.name!r} has a negative fee")
    batch = session.scalar(select(Batch).where(Batch.school_id == school.id, Batch.name == data.name))
    if batch is None:
        batch = Batch(school=school, name=data.name)
        session.add(batch)
    batch.education = data.education
    batch.opens_at, batch.closes_at = data.opens_at, data.closes_at
    batch.fee_fen = data.fee_fen
    batch.review_days_min, batch.review_days_max = data.review_days_min, data.review_days_max
    batch.photo_spec = data.photo_spec.model_dump(mode="json")
    session.flush()
    return batch
