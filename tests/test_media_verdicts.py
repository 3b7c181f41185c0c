"""The checks' verdicts over a photo set must not drift when the pipeline is made faster or refactored.

bench/photo_verdicts_after.txt is the pass/fail of every check for 71 photos (the fixtures and
seeded variants of them: bench/photo_verdicts.py, which also writes and compares the full table). This
test re-checks a third of the set, fixtures and variants, in a few seconds. A row that changes here is
either a bug or a deliberate change of a check: then regenerate the table and say why in the commit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "bench" / "photo_verdicts_after.txt"


@pytest.fixture(scope="module")
def verdicts():
    spec = importlib.util.spec_from_file_location("photo_verdicts", ROOT / "bench" / "photo_verdicts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("photo_verdicts", module)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_covers_the_whole_set(verdicts) -> None:
    want = verdicts.read_table(TABLE)
    names = [name for name, _, _ in verdicts.photo_set(only=set())]  # generates nothing
    assert names == []
    expected = {p.name for p in verdicts.PHOTOS.glob("*.jpg")}
    expected |= {f"{b[:-4]}~{n}" for b, n, _ in verdicts.SMALL_VARIANTS}
    expected |= {f"phone_4000x3000~{n}" for n, _ in verdicts.PHONE_VARIANTS}
    assert set(want) == expected and len(want) >= 40


def test_a_third_of_the_set_gives_the_same_verdicts(verdicts) -> None:
    want = verdicts.read_table(TABLE)
    # Every third row, and one 12 MP auto-fix (the slow ones) — fixtures and variants alike.
    subset = {name for i, name in enumerate(want) if i % 3 == 0 and "phone_4000x3000~" not in name}
    subset.add("phone_4000x3000~crop_right_2400x1800")
    got = verdicts.table(subset)
    assert len(got) == len(subset)
    assert {n: got[n] for n in subset} == {n: want[n] for n in subset}
