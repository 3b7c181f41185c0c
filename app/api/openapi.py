"""The API's validation schemas double as its OpenAPI document (spectree + pydantic).

Views declare their request and response models with `@spec.validate(...)`; spectree validates
requests against them and builds /api/v1/openapi.json from the same declarations, so the document
cannot drift from the code. Validation failures come back in our own shape, in Chinese:
422 {"errors": [{"field": ..., "message": ...}]}.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from pydantic import BaseModel
from spectree import SecurityScheme, SpecTree
from spectree.models import InType, SecureType, SecuritySchemeData

# Chinese wording for pydantic's error types; the student sees these beside the field.
_MESSAGES = {
    "missing": "此项必填",
    "string_too_short": "内容太短",
    "string_too_long": "内容太长",
    "string_pattern_mismatch": "格式不正确",
    "string_type": "应为文字",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "greater_than_equal": "超出允许的范围",
    "less_than_equal": "超出允许的范围",
    "bool_parsing": "应为是或否",
    "literal_error": "不是可选的值",
    "enum": "不是可选的值",
    "date_from_datetime_parsing": "日期格式不正确",
    "extra_forbidden": "不认识的字段",
    "json_invalid": "请求内容不是有效的 JSON",
    "model_attributes_type": "请求内容格式不正确",
    "model_type": "请求内容格式不正确",
}


class FieldError(BaseModel):
    field: str
    message: str


class ValidationErrors(BaseModel):
    errors: list[FieldError]


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """pydantic's error list → [{"field", "message"}], with Chinese messages."""
    out = []
    for err in errors:
        # spectree prefixes the location with the part of the request ("body", "query").
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "json", "form")]
        ctx = err.get("ctx") or {}
        message = ctx.get("chinese") or _MESSAGES.get(err.get("type", ""), "填写有误")
        out.append({"field": ".".join(loc) or "_", "message": str(message)})
    return out


def _before(req: Any, resp: Response | None, err: Exception | None, instance: Any, adapter: Any) -> None:
    if err is not None and resp is not None:
        body = {"errors": field_errors(adapter.validation_errors(err))}
        resp.set_data(json.dumps(body, ensure_ascii=False))
        resp.mimetype = "application/json"


spec = SpecTree(
    "flask",
    # Not "api/v1": spectree leaves routes under its own path out of the document.
    path="api/v1/docs",
    mode="strict",
    annotations=True,
    title="证件照核验服务 API",
    version="v1",
    description="JSON API used by the student H5 pages. Sign-in is WeChat OAuth2 (snsapi_base): "
    "a session cookie; state-changing calls send the CSRF token in the X-CSRFToken header.",
    before=_before,
    validation_error_status=422,
    # Every 422 is documented in the shape `_before` gives it, not spectree's own.
    validation_error_model=ValidationErrors,
    security_schemes=[
        SecurityScheme(
            name="session",
            data=SecuritySchemeData(type=SecureType.API_KEY, name="session", field_in=InType.COOKIE),
        )
    ],
    security={"session": []},
)
