"""The emulated population register (人口库) that the sandbox verification provider reads.

An entry says what verifying an ID number answers (`RosterResult`; the verifier that reads it is
app/sandbox/roster_verifier.py); a number not on the roster matches, so the demo needs no set-up.

Storage, in Redis under `sandbox:roster`: a hash of entry id → JSON entry. The entry id is an HMAC
of the normalised number under the roster's own random key (`sandbox:roster:key`), so one number
has one entry, lookups are one HGET, URLs carry an opaque id, and the raw number is stored nowhere
(entries keep it masked). The last verifications the provider answered are kept too, masked, for
the phone page and for tests (`sandbox:roster:checks`).

Routes (the phone page's roster editor uses them, and so do tests):
- `POST /_sandbox/roster` {"id_number", "name", "result", optional "doc_type"} adds or replaces;
- `GET /_sandbox/roster` lists entries and recent checks;
- `DELETE /_sandbox/roster/<entry_id>` removes one.

The editor (templates/sandbox/_roster.html + static/roster.js) is a panel on the phone page and,
on its own, at `/_sandbox/roster/editor`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from flask import Response, jsonify, render_template, request
from redis import Redis

from app.integrations import redis_client
from app.sandbox import bp, state

# The editor reads numbers as the service's forms do, so an entry matches what a student types; this
# is the service's document parser, not the verifier the roster stands in for.
from app.services.id_documents import DocumentType, FieldError, parse_document
from app.services.pii import mask_id_number


class RosterResult(StrEnum):
    """What a roster entry makes the sandbox provider answer."""

    MATCH = "match"  # the number is registered under this name (another name: mismatch)
    MISMATCH = "mismatch"  # this name does not go with this number (another name: not on the roster)
    NOT_FOUND = "not_found"  # the number is unknown, whatever the name
    ERROR = "error"  # the provider fails (like a 5xx), whatever the name
    TIMEOUT = "timeout"  # the provider does not answer in time, whatever the name


@dataclass(frozen=True)
class RosterEntry:
    entry_id: str  # opaque; never the number
    number_masked: str
    name: str
    result: RosterResult
    updated_at: float


ROSTER = state.PREFIX + "roster"
ROSTER_KEY = state.PREFIX + "roster:key"
CHECKS = state.PREFIX + "roster:checks"
CHECKS_KEPT = 100
MAX_ENTRIES = 1000
MAX_NAME = 60

RESULT_LABELS = {
    RosterResult.MATCH: "一致（登记姓名）",
    RosterResult.MISMATCH: "不一致",
    RosterResult.NOT_FOUND: "查无此号",
    RosterResult.ERROR: "服务出错",
    RosterResult.TIMEOUT: "服务超时",
}


def normalise_number(raw: str) -> str:
    return re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", raw)).upper()


def normalise_name(raw: str) -> str:
    name = " ".join(unicodedata.normalize("NFKC", raw).split())
    return "".join("·" if ch in "·•・‧∙⋅．.ᐧ" and not name.isascii() else ch for ch in name)


class RedisRoster:
    """The roster's storage, in Redis."""

    def __init__(self, r: Redis) -> None:
        self.r = r

    def _key(self) -> bytes:
        self.r.set(ROSTER_KEY, secrets.token_hex(32), nx=True)
        return str(self.r.get(ROSTER_KEY)).encode()

    def entry_id(self, id_number: str) -> str:
        digest = hmac.new(self._key(), normalise_number(id_number).encode(), hashlib.sha256)
        return digest.hexdigest()[:24]

    def put(self, id_number: str, name: str, result: RosterResult) -> tuple[RosterEntry, bool]:
        """Add or replace the number's entry; returns (entry, created)."""
        entry = RosterEntry(
            entry_id=self.entry_id(id_number),
            number_masked=mask_id_number(normalise_number(id_number)),
            name=normalise_name(name),
            result=result,
            updated_at=time.time(),
        )
        created = bool(self.r.hset(ROSTER, entry.entry_id, json.dumps(asdict(entry), ensure_ascii=False)))
        return entry, created

    def remove(self, entry_id: str) -> bool:
        return bool(self.r.hdel(ROSTER, entry_id))

    def count(self) -> int:
        return int(self.r.hlen(ROSTER))

    def entries(self) -> list[RosterEntry]:
        found = [self._load(raw) for raw in self.r.hvals(ROSTER)]
        return sorted(found, key=lambda e: e.updated_at, reverse=True)

    def find(self, id_number: str) -> RosterEntry | None:
        raw = self.r.hget(ROSTER, self.entry_id(id_number))
        return self._load(raw) if raw else None

    def record_check(self, check: dict[str, Any]) -> None:
        pipe = self.r.pipeline()
        pipe.lpush(CHECKS, json.dumps(check, ensure_ascii=False))
        pipe.ltrim(CHECKS, 0, CHECKS_KEPT - 1)
        pipe.execute()

    def checks(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.r.lrange(CHECKS, 0, -1)]

    @staticmethod
    def _load(raw: str) -> RosterEntry:
        data = json.loads(raw)
        data["result"] = RosterResult(data["result"])
        return RosterEntry(**data)


def _public(entry: RosterEntry) -> dict[str, Any]:
    return {**asdict(entry), "result": entry.result.value, "result_label": RESULT_LABELS[entry.result]}


def _bad_request(errors: list[dict[str, str]]) -> tuple[Response, int]:
    return jsonify(error={"code": 400, "message": errors[0]["message"]}, errors=errors), 400


def _validate(data: dict[str, Any]) -> tuple[str, str, RosterResult] | list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    raw_number, raw_name, raw_result = data.get("id_number"), data.get("name"), data.get("result")
    raw_type = data.get("doc_type")
    number = normalise_number(raw_number) if isinstance(raw_number, str) else ""
    if not number:
        errors.append({"field": "id_number", "message": "请填写证件号码"})
    elif raw_type not in (None, ""):
        try:
            number = parse_document(DocumentType(str(raw_type)), number, date.today()).number
        except FieldError as exc:
            errors.append({"field": exc.field, "message": exc.message})
        except ValueError:
            errors.append({"field": "doc_type", "message": "证件类型不正确"})
    elif not re.fullmatch(r"[A-Z0-9]{5,18}", number):
        errors.append({"field": "id_number", "message": "证件号码应为 5–18 位字母和数字"})
    name = normalise_name(raw_name) if isinstance(raw_name, str) else ""
    if not name:
        errors.append({"field": "name", "message": "请填写姓名"})
    elif len(name) > MAX_NAME:
        errors.append({"field": "name", "message": f"姓名最多 {MAX_NAME} 个字"})
    try:
        result = RosterResult(str(raw_result))
    except ValueError:
        choices = "、".join(r.value for r in RosterResult)
        errors.append({"field": "result", "message": f"核验结果应为 {choices} 之一"})
    return errors or (number, name, result)


@bp.post("/roster")
def roster_add() -> tuple[Response, int]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _bad_request([{"field": "body", "message": "请提交 JSON：{id_number, name, result}"}])
    checked = _validate(data)
    if isinstance(checked, list):
        return _bad_request(checked)
    number, name, result = checked
    roster = RedisRoster(redis_client())
    if roster.find(number) is None and roster.count() >= MAX_ENTRIES:
        return _bad_request([{"field": "id_number", "message": f"名单最多 {MAX_ENTRIES} 条，请先删除一些"}])
    entry, created = roster.put(number, name, result)
    return jsonify(entry=_public(entry), created=created), 201 if created else 200


@bp.get("/roster")
def roster_list() -> Response:
    roster = RedisRoster(redis_client())
    return jsonify(
        entries=[_public(e) for e in roster.entries()],
        checks=roster.checks(),
        results=[{"value": r.value, "label": label} for r, label in RESULT_LABELS.items()],
    )


@bp.delete("/roster/<entry_id>")
def roster_delete(entry_id: str) -> Response | tuple[Response, int]:
    if not RedisRoster(redis_client()).remove(entry_id):
        return jsonify(error={"code": 404, "message": "名单中没有这一条"}), 404
    return jsonify(deleted=entry_id)


@bp.context_processor
def _roster_options() -> dict[str, Any]:
    # The editor partial lists the results; it is included by sandbox pages only.
    return {"roster_results": {r.value: label for r, label in RESULT_LABELS.items()}}


@bp.get("/roster/editor")
def roster_editor() -> str:
    return render_template("sandbox/roster.html", roster_open=True)
