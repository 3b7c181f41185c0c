"""Synthetic resident ID cards (居民身份证) for the OCR tests and bench: never a real person's card.

Every identity is made up here from a seeded generator: a common surname and given-name characters drawn at
random, a plausible region code, a birth date, a sequence number and the GB 11643 check digit. The card is
drawn with the system's Noto CJK font (Debian's fonts-noto-cjk) in the real card's layout — front: 姓名,
性别 民族, 出生 年 月 日, 住址 (up to three lines), 公民身份号码, a photo box; back: 中华人民共和国,
居民身份证, 签发机关, 有效期限 — then photographed: laid on a table-like background, turned (±15°), seen
in perspective, blurred, with glare and JPEG noise.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_PATH = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FONT_MISSING = f"Noto CJK is not installed ({FONT_PATH}): apt-get install fonts-noto-cjk"

# 85.6 × 54 mm at 10 px/mm.
CARD_W, CARD_H = 856, 540

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文辉玉红萍海燕志鹏飞晓斌宇浩凯欣怡子涵梓轩"
    "佳琪雨婷思远博文俊杰嘉怡诗雅家豪天宇晨阳梦瑶一诺宏伟丹阳春梅秋菊冬雪志强永刚德明淑珍凤英翠兰玉兰"
)
# Uyghur and Kazakh names are written in Chinese characters as given name · father's name.
TRANSLITERATED = (
    "阿依古丽", "古丽娜尔", "买买提", "艾力", "热依拉", "努尔", "吐尔逊", "阿不都", "帕提古丽", "迪丽娜尔",
    "依明", "艾买提", "麦尔丹", "热合曼", "阿依努尔", "巴合提", "叶尔兰", "哈力木", "沙吾提", "库尔班",
)  # fmt: skip
ETHNICITIES = ("汉",) * 14 + ("回", "维吾尔", "哈萨克", "蒙古", "藏", "壮", "满", "苗", "土家", "彝", "朝鲜")

# (region code, address prefix, issuing police authority). Codes from GB/T 2260; the rest is made up.
REGIONS = (
    ("110105", "北京市朝阳区", "北京市公安局朝阳分局"),
    ("110108", "北京市海淀区", "北京市公安局海淀分局"),
    ("120101", "天津市和平区", "天津市公安局和平分局"),
    ("130102", "河北省石家庄市长安区", "石家庄市公安局长安分局"),
    ("140105", "山西省太原市小店区", "太原市公安局小店分局"),
    ("210102", "辽宁省沈阳市和平区", "沈阳市公安局和平分局"),
    ("230103", "黑龙江省哈尔滨市南岗区", "哈尔滨市公安局南岗分局"),
    ("310115", "上海市浦东新区", "上海市公安局浦东分局"),
    ("320102", "江苏省南京市玄武区", "南京市公安局玄武分局"),
    ("330106", "浙江省杭州市西湖区", "杭州市公安局西湖分局"),
    ("340104", "安徽省合肥市蜀山区", "合肥市公安局蜀山分局"),
    ("350102", "福建省福州市鼓楼区", "福州市公安局鼓楼分局"),
    ("370102", "山东省济南市历下区", "济南市公安局历下分局"),
    ("410105", "河南省郑州市金水区", "郑州市公安局金水分局"),
    ("420106", "湖北省武汉市武昌区", "武汉市公安局武昌分局"),
    ("430104", "湖南省长沙市岳麓区", "长沙市公安局岳麓分局"),
    ("440106", "广东省广州市天河区", "广州市公安局天河分局"),
    ("450103", "广西壮族自治区南宁市青秀区", "南宁市公安局青秀分局"),
    ("500103", "重庆市渝中区", "重庆市公安局渝中区分局"),
    ("510107", "四川省成都市武侯区", "成都市公安局武侯区分局"),
    ("520102", "贵州省贵阳市南明区", "贵阳市公安局南明分局"),
    ("530102", "云南省昆明市五华区", "昆明市公安局五华分局"),
    ("610113", "陕西省西安市雁塔区", "西安市公安局雁塔分局"),
    ("620102", "甘肃省兰州市城关区", "兰州市公安局城关分局"),
    ("640104", "宁夏回族自治区银川市兴庆区", "银川市公安局兴庆区分局"),
    ("650102", "新疆维吾尔自治区乌鲁木齐市天山区", "乌鲁木齐市公安局天山区分局"),
    ("650104", "新疆维吾尔自治区乌鲁木齐市新市区", "乌鲁木齐市公安局新市区分局"),
    ("652801", "新疆维吾尔自治区库尔勒市", "库尔勒市公安局"),
    ("653101", "新疆维吾尔自治区喀什市", "喀什市公安局"),
    ("654002", "新疆维吾尔自治区伊宁市", "伊宁市公安局"),
)
STREETS = "人民建设解放和平胜利光明幸福团结友谊新华文化长江黄河天山昆仑东风红旗迎宾育才"
PLACES = ("路", "街", "大道", "巷")

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_character(first17: str) -> str:
    # Restated here (GB 11643) so that the card maker does not share a bug with the code it tests.
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


@dataclass(frozen=True)
class FakeIdentity:
    name: str
    sex: str  # 男 / 女
    ethnicity: str
    birth: date
    address: str
    number: str
    authority: str
    valid_from: date
    valid_to: date | None  # None: 长期


def fake_identity(rng: random.Random, *, today: date = date(2026, 12, 1)) -> FakeIdentity:
    code, prefix, authority = rng.choice(REGIONS)
    birth = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 46))
    sex = rng.choice("男女")
    seq = rng.randrange(0, 100)
    sex_digit = rng.choice("13579" if sex == "男" else "02468")
    first17 = f"{code}{birth:%Y%m%d}{seq:02d}{sex_digit}"
    ethnicity = rng.choice(ETHNICITIES)
    if ethnicity in ("维吾尔", "哈萨克") and rng.random() < 0.7:
        name = "·".join(rng.sample(TRANSLITERATED, 2))
    else:
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    street = "".join(rng.sample(STREETS, 2))
    address = f"{prefix}{street}{rng.choice(PLACES)}{rng.randrange(1, 999)}号"
    flat = f"{rng.randrange(1, 30)}栋{rng.randrange(1, 6)}单元{rng.randrange(101, 2800)}室"
    if rng.random() < 0.5 and len(address + flat) <= 33:  # three lines of 11 characters
        address += flat
    # Validity by age at issue: 5 years under 16, 10 up to 25, 20 up to 45, 长期 after.
    issued = max(birth + timedelta(days=365 * 16), today - timedelta(days=rng.randrange(30, 365 * 19)))
    age = (issued - birth).days // 365
    years = 10 if age <= 25 else 20 if age <= 45 else None
    if years is not None and issued.year + years < today.year - 1:
        years = 20
    valid_to = issued.replace(year=issued.year + years) if years else None
    if issued.month == 2 and issued.day == 29:
        issued = issued.replace(day=28)
        valid_to = valid_to.replace(day=28) if valid_to else None
    return FakeIdentity(
        name=name,
        sex=sex,
        ethnicity=ethnicity,
        birth=birth,
        address=address,
        number=first17 + check_character(first17),
        authority=authority,
        valid_from=issued,
        valid_to=valid_to,
    )


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size)


LABEL = (40, 90, 150)  # the card's labels are printed in blue, the values in black
VALUE = (20, 20, 20)


def _card_base(rng: random.Random) -> Image.Image:
    """The card's pale printed background: a soft gradient and faint guilloche waves."""
    y, x = np.mgrid[0:CARD_H, 0:CARD_W].astype(np.float32)
    base = np.empty((CARD_H, CARD_W, 3), np.float32)
    base[..., 0] = 236 + 10 * np.sin(x / 170 + rng.random() * 6)
    base[..., 1] = 240 + 8 * np.cos(y / 120)
    base[..., 2] = 236 + 12 * np.sin((x + y) / 260)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    phase = rng.random() * 6
    for k in range(0, CARD_H, 18):
        pts = [(px, k + 6 * np.sin(px / 40 + phase + k)) for px in range(0, CARD_W, 8)]
        draw.line(pts, fill=(214, 222, 228), width=1)
    return img


def _spaced(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int, fill: tuple[int, int, int], gap: int
) -> None:
    x, y = xy
    for ch in text:
        draw.text((x, y), ch, font=_font(size), fill=fill)
        x += int(draw.textlength(ch, font=_font(size))) + gap


def _address_lines(address: str, per_line: int = 11) -> list[str]:
    return [address[i : i + per_line] for i in range(0, len(address), per_line)][:3]


def draw_front(ident: FakeIdentity, rng: random.Random) -> Image.Image:
    img = _card_base(rng)
    draw = ImageDraw.Draw(img)
    lab, val = 22, 28
    _spaced(draw, (60, 62), "姓名", lab, LABEL, 14)
    draw.text((150, 56), ident.name, font=_font(val + 2), fill=VALUE)
    _spaced(draw, (60, 127), "性别", lab, LABEL, 14)
    draw.text((150, 122), ident.sex, font=_font(val), fill=VALUE)
    _spaced(draw, (250, 127), "民族", lab, LABEL, 14)
    draw.text((340, 122), ident.ethnicity, font=_font(val), fill=VALUE)
    _spaced(draw, (60, 192), "出生", lab, LABEL, 14)
    b = ident.birth
    draw.text((150, 187), f"{b.year}", font=_font(val), fill=VALUE)
    draw.text((232, 192), "年", font=_font(lab), fill=LABEL)
    draw.text((278 if b.month < 10 else 270, 187), f"{b.month}", font=_font(val), fill=VALUE)
    draw.text((310, 192), "月", font=_font(lab), fill=LABEL)
    draw.text((352 if b.day < 10 else 344, 187), f"{b.day}", font=_font(val), fill=VALUE)
    draw.text((384, 192), "日", font=_font(lab), fill=LABEL)
    _spaced(draw, (60, 257), "住址", lab, LABEL, 14)
    for i, line in enumerate(_address_lines(ident.address)):
        draw.text((150, 252 + 44 * i), line, font=_font(val), fill=VALUE)
    _spaced(draw, (60, 455), "公民身份号码", lab, LABEL, 6)
    _spaced(draw, (290, 448), ident.number, 32, VALUE, 3)
    # The photo: a grey box and a silhouette, nobody's face.
    draw.rectangle((590, 70, 810, 350), fill=(222, 226, 230))
    draw.ellipse((650, 110, 750, 230), fill=(120, 124, 130))
    draw.pieslice((610, 220, 790, 420), 180, 360, fill=(120, 124, 130))
    return img


def draw_back(ident: FakeIdentity, rng: random.Random) -> Image.Image:
    img = _card_base(rng)
    draw = ImageDraw.Draw(img)
    # The emblem's place: a red disc with a yellow star, not the emblem itself.
    draw.ellipse((50, 45, 200, 195), fill=(200, 30, 30))
    draw.regular_polygon((125, 120, 45), 5, fill=(250, 210, 40))
    _spaced(draw, (270, 70), "中华人民共和国", 44, VALUE, 10)
    _spaced(draw, (270, 160), "居民身份证", 62, VALUE, 18)
    _spaced(draw, (170, 385), "签发机关", 22, VALUE, 8)
    draw.text((320, 380), ident.authority, font=_font(27), fill=VALUE)
    _spaced(draw, (170, 450), "有效期限", 22, VALUE, 8)
    end = "长期" if ident.valid_to is None else f"{ident.valid_to:%Y.%m.%d}"
    draw.text((320, 445), f"{ident.valid_from:%Y.%m.%d}-{end}", font=_font(27), fill=VALUE)
    return img


def _background(rng: random.Random, w: int, h: int) -> np.ndarray:
    """A table, a sheet of paper or a dark cloth: a colour with a little grain and a gradient."""
    colour = np.array(
        rng.choice(
            ((120, 85, 60), (70, 70, 75), (150, 120, 90), (40, 45, 60), (95, 110, 90), (160, 150, 140))
        )
    )
    nrng = np.random.default_rng(rng.randrange(2**32))
    y = np.linspace(0.8, 1.15, h, dtype=np.float32)[:, None, None]
    grain = nrng.normal(0, 8, (h, w, 1)).astype(np.float32)
    return np.clip(colour[None, None, :] * y + grain, 0, 255).astype(np.uint8)


def photograph(card: Image.Image, rng: random.Random, *, size: tuple[int, int] = (1280, 960)) -> bytes:
    """The card as a phone would take it: on a background, turned, in perspective, blurred, with glare and
    JPEG noise. Returns JPEG bytes."""
    w, h = size
    bg = _background(rng, w, h)
    scale = rng.uniform(0.62, 0.85) * w / CARD_W
    cw, ch = CARD_W * scale, CARD_H * scale
    angle = np.deg2rad(rng.uniform(-15, 15))
    cx = w / 2 + rng.uniform(-0.06, 0.06) * w
    cy = h / 2 + rng.uniform(-0.06, 0.06) * h
    corners = np.array([[-cw / 2, -ch / 2], [cw / 2, -ch / 2], [cw / 2, ch / 2], [-cw / 2, ch / 2]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = corners @ rot.T + [cx, cy]
    # Perspective: each corner moves by up to 4 % of the card's width.
    dst += np.array([[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(4)]) * 0.04 * cw
    src = np.array([[0, 0], [CARD_W, 0], [CARD_W, CARD_H], [0, CARD_H]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    rgb = np.asarray(card.convert("RGB"))
    warped = cv2.warpPerspective(rgb, m, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((CARD_H, CARD_W), 255, np.uint8), m, (w, h), flags=cv2.INTER_LINEAR)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    out = warped * alpha + bg * (1 - alpha)
    # Glare: a soft bright spot somewhere on the card.
    gx, gy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = rng.uniform(0.08, 0.2) * w
    glare = rng.uniform(0.15, 0.45) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * radius**2))
    out = out + (255 - out) * glare[..., None]
    out = out * rng.uniform(0.85, 1.1)
    photo = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.4)))
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=rng.randrange(55, 90))
    return buf.getvalue()


def card_photos(seed: int) -> tuple[FakeIdentity, bytes, bytes]:
    """One made-up identity and photos of its card's front and back, the same for the same seed."""
    rng = random.Random(seed)
    ident = fake_identity(rng)
    return ident, photograph(draw_front(ident, rng), rng), photograph(draw_back(ident, rng), rng)


def font_available() -> bool:
    return FONT_PATH.exists()


# Readings of the same bytes, kept for the whole test session: OCR takes ~0.6 s a side, and the tests that
# upload a synthetic card (the API, the pages) send the same photo more than once.
_READINGS: dict[tuple[str, str], Any] = {}


def _remembered(side: str, read: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def reading(data: bytes) -> Any:
        key = (side, hashlib.sha256(data).hexdigest())
        if key not in _READINGS:
            _READINGS[key] = read(data)
        return _READINGS[key]

    return reading


@contextmanager
def readings_cached() -> Iterator[None]:
    """While it lasts, media.idcard's read_front/read_back remember their readings by the bytes read (a
    decoder refusal is not remembered: it costs nothing)."""
    import pytest

    from media import idcard

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(idcard, "read_front", _remembered("front", idcard.read_front))
        patch.setattr(idcard, "read_back", _remembered("back", idcard.read_back))
        yield
