"""How untrusted text from a request becomes a number or a row id: one rule for every view and parser.

- Numbers are ASCII digits only. `str.isdigit()` also accepts "²³" (then `int()` raises) and `int()`
  itself reads Arabic-Indic or full-width digits; a signature timestamp or an id written that way is
  not one any client of ours sends.
- A row id is 1 … 2³¹−1, the range of the database's integer columns: a larger one made PostgreSQL
  answer "value out of range for type integer" (a 500). Out of range is simply not found (404) in a
  path, invalid (422) in a JSON body, and ignored as a filter in a query string.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field
from werkzeug.routing import IntegerConverter, Map

MAX_ROW_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,18}")


def ascii_int(text: str | None) -> int | None:
    """The non-negative number `text` writes in at most 18 ASCII digits, or None."""
    if text is None or not _DIGITS.fullmatch(text):
        return None
    return int(text)


def row_id(text: str | None) -> int | None:
    """A row id from a query string or a form field, or None when it is not one."""
    value = ascii_int(text)
    return value if value is not None and 1 <= value <= MAX_ROW_ID else None


# A row id in a JSON body: out of range is a 422 naming the field, like any other invalid value.
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


class RowIdConverter(IntegerConverter):
    """`<int:name>` in this app's routes (the factory puts it in place of Werkzeug's): ASCII digits within
    the row-id range, anything else is a 404. Every integer in a route here is a row id; keeping the
    converter's name lets the OpenAPI generator document the parameter as an integer."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=MAX_ROW_ID)
