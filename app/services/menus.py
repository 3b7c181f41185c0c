"""The account's menus: one versioned data file (app/data/menus.json), validated and pushed to WeChat.

The file holds the default (student) menu and conditional menus keyed by a tag name (`operator`).
Validation mirrors WeChat's limits, so a bad edit fails here, with every problem listed, before
anything is sent. Pushing is idempotent: what WeChat already shows is compared first and left alone.
https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Personalized_menu_interface.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.services import operators

MENU_FILE = Path(__file__).resolve().parent.parent / "data" / "menus.json"

MAX_BUTTONS = 3
MAX_SUB_BUTTONS = 5
NAME_BYTES = 16
SUB_NAME_BYTES = 60
KEY_BYTES = 128
URL_BYTES = 1024
KEY_TYPES = frozenset(
    {
        "click",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
    }
)
BUTTON_TYPES = KEY_TYPES | {"view", "miniprogram", "media_id", "article_id", "article_view_limited"}
# The fields a button carries at WeChat (anything else in the file, like "comment", is not sent).
BUTTON_FIELDS = ("type", "name", "key", "url", "appid", "pagepath", "media_id", "article_id")

Button = dict[str, Any]


class MenuInvalidError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ConditionalMenu:
    tag: str
    button: list[Button]


@dataclass(frozen=True)
class MenuFile:
    version: int
    default: list[Button]
    conditional: list[ConditionalMenu]


@dataclass
class PushReport:
    version: int
    actions: list[str] = field(default_factory=list)
    changed: bool = False


def _bytes(value: str) -> int:
    return len(value.encode("utf-8"))


def _substitute(value: Any, base_url: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base}", base_url)
    if isinstance(value, list):
        return [_substitute(v, base_url) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, base_url) for k, v in value.items()}
    return value


def _clean(button: Button) -> Button:
    cleaned: Button = {k: button[k] for k in BUTTON_FIELDS if button.get(k) not in (None, "")}
    if button.get("sub_button"):
        cleaned.pop("type", None)
        cleaned["sub_button"] = [_clean(s) for s in button["sub_button"]]
    return cleaned


def _leaf_problems(button: Any, where: str, sub: bool) -> list[str]:
    if not isinstance(button, dict):
        return [f"{where}: must be an object"]
    problems = []
    name, kind = button.get("name"), button.get("type")
    limit = SUB_NAME_BYTES if sub else NAME_BYTES
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}.name: missing")
    elif _bytes(name) > limit:
        problems.append(f"{where}.name: {name!r} is {_bytes(name)} bytes, WeChat allows {limit}")
    if kind not in BUTTON_TYPES:
        problems.append(f"{where}.type: {kind!r} is not a WeChat button type")
    if kind in KEY_TYPES:
        key = button.get("key")
        if not isinstance(key, str) or not key:
            problems.append(f"{where}.key: required for type {kind}")
        elif _bytes(key) > KEY_BYTES:
            problems.append(f"{where}.key: longer than {KEY_BYTES} bytes")
    if kind in ("view", "miniprogram"):
        url = button.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(f"{where}.url: must be an http(s) URL")
        elif _bytes(url) > URL_BYTES:
            problems.append(f"{where}.url: longer than {URL_BYTES} bytes")
    if kind == "miniprogram" and not (button.get("appid") and button.get("pagepath")):
        problems.append(f"{where}: miniprogram needs appid and pagepath")
    return problems


def buttons_problems(buttons: Any, where: str) -> list[str]:
    """Every way `buttons` breaks WeChat's limits (empty: it is a valid menu)."""
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        return [f"{where}: 1 to {MAX_BUTTONS} top-level buttons"]
    problems: list[str] = []
    for i, button in enumerate(buttons):
        here = f"{where}[{i}]"
        if not isinstance(button, dict):
            problems.append(f"{here}: must be an object")
            continue
        subs = button.get("sub_button")
        if not subs:
            problems += _leaf_problems(button, here, sub=False)
            continue
        name = button.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{here}.name: missing")
        elif _bytes(name) > NAME_BYTES:
            problems.append(f"{here}.name: {name!r} is {_bytes(name)} bytes, WeChat allows {NAME_BYTES}")
        if not isinstance(subs, list) or len(subs) > MAX_SUB_BUTTONS:
            problems.append(f"{here}.sub_button: at most {MAX_SUB_BUTTONS} sub-buttons")
            continue
        for j, sub in enumerate(subs):
            problems += _leaf_problems(sub, f"{here}.sub_button[{j}]", sub=True)
    return problems


def parse(raw: Any, base_url: str) -> MenuFile:
    """Check a menus document (the JSON file's content) and resolve `{base}`."""
    if not isinstance(raw, dict):
        raise MenuInvalidError(["the menu file must hold a JSON object"])
    raw = _substitute(raw, base_url.rstrip("/"))
    problems: list[str] = []
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append("version: a positive integer, raised on every change")
    default = raw.get("default")
    default_buttons = default.get("button") if isinstance(default, dict) else None
    problems += buttons_problems(default_buttons, "default.button")
    conditional: list[ConditionalMenu] = []
    tags_seen: set[str] = set()
    entries = raw.get("conditional", [])
    if not isinstance(entries, list):
        problems.append("conditional: must be a list")
        entries = []
    for i, entry in enumerate(entries):
        where = f"conditional[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        tag = entry.get("tag")
        if not isinstance(tag, str) or not tag.strip() or _bytes(tag) > 30:
            problems.append(f"{where}.tag: a tag name of 1-30 bytes")
            tag = ""
        elif tag in tags_seen:
            problems.append(f"{where}.tag: {tag!r} has two menus")
        else:
            tags_seen.add(tag)
        problems += buttons_problems(entry.get("button"), f"{where}.button")
        if not problems:
            conditional.append(ConditionalMenu(tag=tag, button=[_clean(b) for b in entry["button"]]))
    if problems:
        raise MenuInvalidError(problems)
    assert isinstance(version, int) and isinstance(default_buttons, list)
    return MenuFile(version=version, default=[_clean(b) for b in default_buttons], conditional=conditional)


def load(base_url: str, path: Path = MENU_FILE) -> MenuFile:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MenuInvalidError([f"{path}: {exc}"]) from exc
    return parse(raw, base_url)


def _comparable(buttons: Any) -> list[Button]:
    # What menu/get returns carries empty sub_button lists and may stringify values; compare content.
    return [_clean(b) for b in buttons or []]


def push(client: Any, menus: MenuFile, *, force: bool = False) -> PushReport:
    """Default menu first (a conditional menu needs one), then each tag's conditional menu.

    A menu WeChat already shows identically is left alone (unless `force`); a tag's older
    conditional menus are deleted before its new one is added, so exactly one remains.
    """
    report = PushReport(version=menus.version)
    tag_ids: dict[str, int] = {}
    for menu in menus.conditional:
        tag = operators.ensure_tag(client, menu.tag)
        tag_ids[menu.tag] = tag.tag_id
        state = "created" if tag.created else "exists"
        report.actions.append(f"tag {menu.tag!r}: {state} (id {tag.tag_id})")

    remote = client.menu.get() or {}  # None when the account has no menu (46003)
    remote_default = (remote.get("menu") or {}).get("button")
    if force or _comparable(remote_default) != menus.default:
        client.menu.create({"button": menus.default})
        report.changed = True
        report.actions.append("default menu: " + ("updated" if remote_default else "created"))
    else:
        report.actions.append("default menu: unchanged")

    remote_conditional = remote.get("conditionalmenu") or []
    for menu in menus.conditional:
        tag_id = str(tag_ids[menu.tag])
        same_tag = [m for m in remote_conditional if str((m.get("matchrule") or {}).get("tag_id")) == tag_id]
        if not force and len(same_tag) == 1 and _comparable(same_tag[0].get("button")) == menu.button:
            report.actions.append(f"conditional menu for {menu.tag!r}: unchanged")
            continue
        for old in same_tag:
            client.menu.del_conditional(old["menuid"])
        added = client.menu.add_conditional({"button": menu.button, "matchrule": {"tag_id": tag_id}})
        report.changed = True
        replaced = f", replaced {len(same_tag)}" if same_tag else ""
        report.actions.append(f"conditional menu for {menu.tag!r}: added menuid {added['menuid']}{replaced}")
    return report
