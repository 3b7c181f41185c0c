"""Reading a resident ID card (居民身份证) from a photo, offline: find the card, straighten it, OCR it, and
pick the fields out of the lines by their printed labels and positions.

    read_front(data) -> FrontReading   姓名, 性别, 民族, 出生, 住址, 公民身份号码
    read_back(data)  -> BackReading    签发机关, 有效期限

Nothing here judges the reading (check digit, expiry, agreement with the bound identity): that is
app/services/idcard_reading.py's job, which knows the identity rules. A field that could not be read is
None; a photo that is no ID card gives a reading with every field None, never an error — except bytes that
are not a sane JPEG/PNG, which raise UnreadableImageError from the decoder like every other upload.

The OCR is RapidOCR (PP-OCRv4 detection and recognition, ONNX, the models ship in its wheel: nothing is
downloaded). Its engine is made once per process, on first use, and used by one thread at a time.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from media import decode, memory

T = TypeVar("T")

# The card is 85.6 × 54 mm; the straightened card is this many pixels (10 px/mm), enough for the
# recogniser's 48-px line height at the card's 2.5–3.5 mm characters.
CARD_W, CARD_H = 856, 540
CARD_RATIO = CARD_W / CARD_H
# A photo is decoded so that its long side is about this: a card filling a third of it still has
# characters ~20 px tall, and a 12 MP photo is never decoded in full.
WORK_SIDE = 1600
# Card finding runs on a smaller copy: contours are as good and 6× cheaper.
FIND_SIDE = 640
# One core per reading: a worker serves one upload at a time per thread, and the lock below serialises
# readings in a process, so more ONNX threads would only contend with the other workers on the machine.
OCR_THREADS = 1
# The detector scales the straightened card's short side to this. RapidOCR's default, 736, enlarges the
# card: ~15 % more time and 40 MB more memory, and no more fields read right on the bench's cards.
DET_SIDE = CARD_H


@dataclass(frozen=True)
class Field(Generic[T]):
    value: T
    # The recogniser's score (0–1) of the weakest text line the value came from.
    confidence: float


@dataclass(frozen=True)
class FrontReading:
    name: Field[str] | None = None
    sex: Field[str] | None = None  # 男 / 女
    ethnicity: Field[str] | None = None  # 汉, 维吾尔 … (without 族)
    birth_date: Field[date] | None = None
    address: Field[str] | None = None  # the lines joined, without spaces
    number: Field[str] | None = None  # 17 digits and a digit or X, as read (not validated)
    card_found: bool = False  # a card-shaped outline was found and straightened
    lines: tuple[str, ...] = field(default=(), repr=False)  # what the OCR read, row by row

    @property
    def empty(self) -> bool:
        return all(
            getattr(self, f) is None for f in ("name", "sex", "ethnicity", "birth_date", "address", "number")
        )


@dataclass(frozen=True)
class BackReading:
    authority: Field[str] | None = None  # 签发机关
    valid_from: Field[date] | None = None
    valid_until: Field[date] | None = None  # None with long_term: 长期
    long_term: bool = False
    card_found: bool = False
    lines: tuple[str, ...] = field(default=(), repr=False)

    @property
    def empty(self) -> bool:
        return (
            self.authority is None
            and self.valid_from is None
            and self.valid_until is None
            and not self.long_term
        )


def read_front(data: bytes) -> FrontReading:
    found, image, rows = _ocr_card(data)
    if _reversed(rows, top=_LABELS["name"], bottom=re.compile(r"公民身份|[0-9]{17}")):
        rows = _read_rows(cv2.rotate(image, cv2.ROTATE_180))
    return _parse_front(rows, card_found=found)


def read_back(data: bytes) -> BackReading:
    found, image, rows = _ocr_card(data)
    if _reversed(rows, top=re.compile("中华人民|居民身份证"), bottom=re.compile("签发|有效期")):
        rows = _read_rows(cv2.rotate(image, cv2.ROTATE_180))
    return _parse_back(rows, card_found=found)


def _reversed(rows: list[_Row], *, top: re.Pattern[str], bottom: re.Pattern[str]) -> bool:
    """An upside-down card: the recogniser turns each line right, but the rows come bottom first. Read
    again turned (another second) only then."""
    first_bottom = next((i for i, r in enumerate(rows) if bottom.search(r.text)), None)
    last_top = max((i for i, r in enumerate(rows) if top.search(r.text)), default=None)
    if first_bottom is None:
        return False
    return first_bottom == 0 and len(rows) > 2 if last_top is None else first_bottom < last_top


# --- decoding and straightening ------------------------------------------------------------------------


def _load(data: bytes) -> np.ndarray:
    """The upload as BGR pixels, long side at most about WORK_SIDE, through the safe decoder."""
    header = decode.inspect(data)
    k = min(1.0, WORK_SIDE / max(header.width, header.height))
    with memory.decoding(header.decoded_bytes):
        img, _ = decode.load_rgb(data, min_size=(math.ceil(header.width * k), math.ceil(header.height * k)))
        rgb = np.asarray(img)
    long_side = max(rgb.shape[:2])
    if long_side > WORK_SIDE * 1.1:
        f = WORK_SIDE / long_side
        rgb = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _order(quad: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left, the long side on top: a card photographed
    upright in portrait comes out landscape."""
    pts = quad.reshape(4, 2).astype(np.float32)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # clockwise in image coordinates, starting from the left-most angle
    start = int(np.argmin(pts.sum(axis=1)))  # top-left: smallest x + y
    pts = np.roll(pts, -start, axis=0)
    if np.linalg.norm(pts[1] - pts[0]) < np.linalg.norm(pts[3] - pts[0]):
        pts = np.roll(pts, -1, axis=0)  # standing card: its left side becomes the top
    return pts


def _card_like(quad: np.ndarray, image_area: float) -> bool:
    pts = _order(quad)
    w = (np.linalg.norm(pts[1] - pts[0]) + np.linalg.norm(pts[2] - pts[3])) / 2
    h = (np.linalg.norm(pts[3] - pts[0]) + np.linalg.norm(pts[2] - pts[1])) / 2
    if h < 1 or cv2.contourArea(pts) < 0.12 * image_area:
        return False
    # Perspective shortens one side: a wide tolerance around 1.585.
    return 0.75 * CARD_RATIO <= w / h <= 1.3 * CARD_RATIO and cv2.isContourConvex(pts.astype(np.int32))


def find_card(bgr: np.ndarray) -> np.ndarray | None:
    """The card's four corners in ``bgr``'s pixels (ordered as ``_order``), or None when no card-shaped
    quadrilateral is large enough: the largest such outline among edge and brightness contours."""
    h, w = bgr.shape[:2]
    f = min(1.0, FIND_SIDE / max(h, w))
    small = cv2.resize(bgr, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else bgr
    gray = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    area = float(gray.shape[0] * gray.shape[1])
    edges = cv2.dilate(cv2.Canny(gray, 30, 90), np.ones((3, 3), np.uint8), iterations=2)
    _, bright = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    best: tuple[float, np.ndarray] | None = None
    for mask in (edges, bright):
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
            hull = cv2.convexHull(c)
            quad = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
            if len(quad) != 4:
                # Rounded corners or a glare-eaten edge: the hull's minimum-area rectangle, when the
                # contour fills it (a blob is no card).
                rect = cv2.boxPoints(cv2.minAreaRect(hull))
                if cv2.contourArea(hull) < 0.9 * cv2.contourArea(rect):
                    continue
                quad = rect
            if _card_like(quad, area):
                size = cv2.contourArea(quad.reshape(-1, 2).astype(np.float32))
                if best is None or size > best[0]:
                    best = (size, quad)
    if best is None:
        return None
    return _order(best[1]) / f


def straighten(bgr: np.ndarray, corners: np.ndarray) -> np.ndarray:
    dst = np.array([[0, 0], [CARD_W, 0], [CARD_W, CARD_H], [0, CARD_H]], np.float32)
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    return cv2.warpPerspective(
        bgr, m, (CARD_W, CARD_H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )


# --- OCR -----------------------------------------------------------------------------------------------

_engine: Any = None
_engine_lock = threading.Lock()


def _ocr(bgr: np.ndarray) -> list[tuple[np.ndarray, str, float]]:
    """(box corners, text, score) of every line RapidOCR reads. The engine is built on first use (its ONNX
    sessions take ~0.5 s and 100 MB) and used under a lock: RapidOCR keeps per-call settings on itself."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR  # imported here: only readers pay for onnxruntime

            _engine = RapidOCR(
                intra_op_num_threads=OCR_THREADS, inter_op_num_threads=1, det_limit_side_len=DET_SIDE
            )
        result, _ = _engine(bgr)
    return [(np.asarray(box, np.float32), str(text), float(score)) for box, text, score in result or []]


def _ocr_card(data: bytes) -> tuple[bool, np.ndarray, list[_Row]]:
    bgr = _load(data)
    corners = find_card(bgr)
    image = straighten(bgr, corners) if corners is not None else bgr
    return corners is not None, image, _read_rows(image)


def _read_rows(image: np.ndarray) -> list[_Row]:
    return _rows([_Item.of(*r) for r in _ocr(image)])


# --- layout ------------------------------------------------------------------------------------------


@dataclass
class _Item:
    text: str
    score: float
    box: np.ndarray  # 4 × 2
    cx: float = 0.0
    cy: float = 0.0
    height: float = 0.0
    x0: float = 0.0

    @classmethod
    def of(cls, box: np.ndarray, text: str, score: float) -> _Item:
        # NFKC: full-width digits and letters, and the recogniser's odd forms, become plain ones.
        clean = unicodedata.normalize("NFKC", text).replace(" ", "")
        return cls(clean, score, box)


@dataclass
class _Row:
    items: list[_Item]

    @property
    def text(self) -> str:
        return "".join(i.text for i in self.items)

    @property
    def score(self) -> float:
        return min(i.score for i in self.items)

    @property
    def x0(self) -> float:
        return self.items[0].x0


def _rows(items: list[_Item]) -> list[_Row]:
    """The lines grouped into rows, top to bottom, each left to right, in a frame turned by the text's
    own slant (a photo that could not be straightened is still read row by row)."""
    if not items:
        return []
    slants, weights = [], []
    for it in items:
        dx, dy = it.box[1] - it.box[0]
        if abs(dx) > 1:
            slants.append(math.atan2(dy, dx))
            weights.append(abs(dx))
    angle = float(np.average(slants, weights=weights)) if slants else 0.0
    c, s = math.cos(-angle), math.sin(-angle)
    for it in items:
        xs = it.box[:, 0] * c - it.box[:, 1] * s
        ys = it.box[:, 0] * s + it.box[:, 1] * c
        it.cx, it.cy, it.x0 = float(xs.mean()), float(ys.mean()), float(xs.min())
        it.height = float(ys.max() - ys.min())
    rows: list[_Row] = []
    for it in sorted(items, key=lambda i: i.cy):
        if rows:
            last = rows[-1].items
            ref = sum(i.cy for i in last) / len(last)
            tol = 0.5 * max(min(i.height for i in last), 1.0)
            if abs(it.cy - ref) < max(tol, 0.5 * it.height):
                last.append(it)
                continue
        rows.append(_Row([it]))
    for row in rows:
        row.items.sort(key=lambda i: i.cx)
    return rows


# --- the front ---------------------------------------------------------------------------------------

# The middle dot of transliterated names (阿依古丽·买买提) and what the recogniser reads it as.
_DOTS = "·•・‧∙⋅.．。"
_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
# The labels as printed, and as the recogniser sometimes gets them wrong (a wrong first or second character).
_LABELS = {
    "name": re.compile(r"^(姓名|姓.|.名)"),
    "sex": re.compile(r"性别|性.|.别"),
    "ethnicity": re.compile(r"民族|民.|.族"),
    "birth": re.compile(r"^(出生|出.|.生)"),
    "address": re.compile(r"^(住址|住.|.址)"),
    "number_label": re.compile(r"公民|身份|号码"),
}
# The 56 officially recognised groups, as the card prints them (without 族).
ETHNIC_GROUPS = (
    "汉", "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗",
    "瑶", "白", "土家", "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜",
    "水", "东乡", "纳西", "景颇", "柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉",
    "毛南", "仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克",
    "德昂", "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺",
)  # fmt: skip
_BY_LENGTH = sorted(ETHNIC_GROUPS, key=len, reverse=True)
_BIRTH = re.compile(r"([12][0-9]{3})年?([0-9]{1,2})月?([0-9]{1,2})日?")


def _number_in(text: str) -> str | None:
    text = text.upper().replace("×", "X").replace("x", "X")
    digits = re.sub(r"[^0-9X]", "", text)
    found = _NUMBER.search(digits)
    return found.group(0) if found else None


def _strip(label: re.Pattern[str], text: str) -> str:
    return label.sub("", text, count=1).strip(":：")


def _ethnicity(row_text: str, score: float) -> Field[str] | None:
    """The group after the 民族 label: the longest known name the row ends with (a stray mark the
    recogniser adds before it is dropped); an unknown value is kept but flagged by a low confidence."""
    tail = row_text[row_text.index("族") + 1 :] if "族" in row_text else ""
    if not tail:
        # The label misread: whatever follows the sex value and a two-character label.
        m = re.search(r"[男女]..([\u4e00-\u9fff]{1,5})$", row_text)
        tail = m.group(1) if m else ""
    tail = re.sub(r"[^\u4e00-\u9fff]", "", tail).removesuffix("族")
    if not tail:
        return None
    for group in _BY_LENGTH:
        if tail.endswith(group):
            return Field(group, score)
    return Field(tail, min(score, 0.5))


def _parse_front(rows: list[_Row], *, card_found: bool) -> FrontReading:
    lines = tuple(r.text for r in rows)
    number: Field[str] | None = None
    number_row = len(rows)
    for i, row in enumerate(rows):
        found = _number_in(_strip(_LABELS["number_label"], row.text) if "号码" in row.text else row.text)
        if found:
            number, number_row = Field(found, row.score), i
            break
    # The labelled rows, by their label; a row whose label was misread is placed by its neighbours.
    idx: dict[str, int] = {}
    for i, row in enumerate(rows[:number_row]):
        t = row.text
        if "name" not in idx and _LABELS["name"].search(t) and not _LABELS["sex"].search(t):
            idx["name"] = i
        elif "sex" not in idx and (_LABELS["sex"].search(t[:3]) or re.search(r"民族|[男女]", t)) and i > 0:
            idx["sex"] = i
        elif "birth" not in idx and (_LABELS["birth"].search(t) or _BIRTH.search(t)) and "年" in t + "年":
            if _BIRTH.search(t):
                idx["birth"] = i
        elif "address" not in idx and _LABELS["address"].search(t):
            idx["address"] = i
    if "name" not in idx and "sex" in idx and idx["sex"] > 0:
        idx["name"] = idx["sex"] - 1
    if "address" not in idx and "birth" in idx and idx["birth"] + 1 < number_row:
        idx["address"] = idx["birth"] + 1

    name = sex = ethnicity = address = None
    birth: Field[date] | None = None
    if "name" in idx:
        row = rows[idx["name"]]
        value = re.sub(f"[{_DOTS}]", "·", _strip(_LABELS["name"], row.text))
        value = re.sub(r"[^\u4e00-\u9fff\u3400-\u4dbf·]", "", value)
        value = value.strip("·")
        if value:
            name = Field(value, row.score)
    if "sex" in idx:
        row = rows[idx["sex"]]
        t = row.text
        m = re.search(r"别([男女])", t) or re.search(r"([男女])", t)
        if m:
            sex = Field(m.group(1), row.score)
        ethnicity = _ethnicity(t, row.score)
    if "birth" in idx:
        row = rows[idx["birth"]]
        m = _BIRTH.search(row.text)
        if m:
            try:
                birth = Field(date(int(m.group(1)), int(m.group(2)), int(m.group(3))), row.score)
            except ValueError:
                birth = None
    if "address" in idx:
        first = rows[idx["address"]]
        parts = [_strip(_LABELS["address"], first.text)]
        scores = [first.score]
        # Continuation lines start under the first line's value, not under the label.
        value_x = first.items[1].x0 if len(first.items) > 1 and len(first.items[0].text) <= 2 else None
        for row in rows[idx["address"] + 1 : number_row][:2]:
            if value_x is not None and row.x0 < value_x - 2 * row.items[0].height:
                break
            if _LABELS["number_label"].search(row.text):
                break
            parts.append(row.text)
            scores.append(row.score)
        value = "".join(parts)
        if value:
            address = Field(value, min(scores))
    return FrontReading(
        name=name,
        sex=sex,
        ethnicity=ethnicity,
        birth_date=birth,
        address=address,
        number=number,
        card_found=card_found,
        lines=lines,
    )


# --- the back ----------------------------------------------------------------------------------------

_AUTHORITY = re.compile(r"签发机关|签发.关|签.机关|.发机关")
_VALIDITY = re.compile(r"有效期限|有效.限|有.期限|.效期限")


def _ymd(digits: str) -> date | None:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def _parse_back(rows: list[_Row], *, card_found: bool) -> BackReading:
    authority: Field[str] | None = None
    valid_from = valid_until = None
    long_term = False
    for i, row in enumerate(rows):
        t = row.text
        if authority is None and _AUTHORITY.search(t):
            value = _strip(_AUTHORITY, t[_AUTHORITY.search(t).start() :])  # type: ignore[union-attr]
            if not value and i + 1 < len(rows):
                value = rows[i + 1].text  # the value read as a row of its own
            value = re.sub(r"[^\u4e00-\u9fff0-9]", "", value)
            if value:
                authority = Field(value, row.score)
        elif _VALIDITY.search(t) or re.search(r"[0-9]{4}\.?[0-9]{2}\.?[0-9]{2}", t):
            rest = t[_VALIDITY.search(t).end() :] if _VALIDITY.search(t) else t  # type: ignore[union-attr]
            digits = re.sub(r"[^0-9]", "", rest)
            if len(digits) >= 8 and valid_from is None:
                start = _ymd(digits[:8])
                if start is not None:
                    valid_from = Field(start, row.score)
                    if "长期" in rest or "长" in rest:
                        long_term = True
                    elif len(digits) >= 16:
                        end = _ymd(digits[8:16])
                        valid_until = Field(end, row.score) if end else None
    return BackReading(
        authority=authority,
        valid_from=valid_from,
        valid_until=valid_until,
        long_term=long_term,
        card_found=card_found,
        lines=tuple(r.text for r in rows),
    )
