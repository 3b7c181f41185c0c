"""What a document slot accepts, what a check returns, and the refusal a student reads."""

from __future__ import annotations

from dataclasses import dataclass, field

# The formats a slot may allow, by their usual extension. The real type is always read from the bytes.
FORMATS = frozenset({"jpg", "png", "pdf", "doc", "docx", "ppt", "pptx"})
IMAGE_FORMATS = frozenset({"jpg", "png"})

MIME_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}

# How each real type is named to a student.
LABELS = {
    "jpg": "JPG 图片",
    "png": "PNG 图片",
    "pdf": "PDF",
    "doc": "Word 文档（.doc）",
    "docx": "Word 文档（.docx）",
    "ppt": "PowerPoint 演示文稿（.ppt）",
    "pptx": "PowerPoint 演示文稿（.pptx）",
    "executable": "可执行程序",
    "script": "脚本程序",
    "zip": "压缩包",
    "xls": "Excel 表格",
    "xlsx": "Excel 表格",
    "ole": "无法识别的 Office 文件",
    "text": "文本文件",
    "empty": "空文件",
    "gif": "GIF 动图",
    "webp": "WebP 图片",
    "bmp": "BMP 图片",
    "tiff": "TIFF 图片",
    "heic": "HEIC 图片（苹果手机的“高效”格式）",
    "avif": "AVIF 图片",
    "video": "视频文件",
    "svg": "SVG 矢量图",
    "unknown": "无法识别的文件",
}


def label(kind: str) -> str:
    return LABELS.get(kind, LABELS["unknown"])


@dataclass(frozen=True)
class SlotRules:
    """One upload slot's rules, e.g. "身份证正面" (jpg/png, ≤ 1500×2100) or "毕业论文" (pdf/doc/docx)."""

    formats: frozenset[str]
    max_bytes: int = 10 * 1024 * 1024
    # Images larger than this are scaled down to fit (never refused for it); both sides are caps.
    max_width: int = 3000
    max_height: int = 2100
    max_pages: int = 50
    # How many files the slot holds: the caller counts what is already stored (see refuse_if_full).
    max_files: int = 5

    def __post_init__(self) -> None:
        unknown = set(self.formats) - FORMATS
        if unknown or not self.formats:
            raise ValueError(f"unknown formats {sorted(unknown)}; allowed: {sorted(FORMATS)}")
        if min(self.max_bytes, self.max_width, self.max_height, self.max_pages, self.max_files) < 1:
            raise ValueError("limits must be positive")
        # A set passed in is frozen, so the rules stay hashable and cannot change under a check.
        object.__setattr__(self, "formats", frozenset(self.formats))

    def allowed_labels(self) -> str:
        order = ["jpg", "png", "pdf", "doc", "docx", "ppt", "pptx"]
        return "、".join(f".{f}" for f in order if f in self.formats)


# The slots schools ask for most; a school may define its own.
ID_CARD = SlotRules(formats=IMAGE_FORMATS, max_width=1500, max_height=2100)
DIPLOMA = SlotRules(formats=IMAGE_FORMATS | {"pdf"}, max_width=3000, max_height=2100)
XUEXIN_RECORD = SlotRules(formats=frozenset({"pdf"}))  # 学信网备案表
THESIS = SlotRules(formats=frozenset({"pdf", "doc", "docx", "ppt", "pptx"}))


@dataclass(frozen=True)
class CheckedDocument:
    """A document that passed: the bytes to store (images re-encoded, others as uploaded) and what it is."""

    kind: str  # one of FORMATS: the real type
    mime_type: str
    data: bytes
    width: int | None = None  # images: the stored pixel size
    height: int | None = None
    pages: int | None = None  # PDFs
    thumbnail: bytes | None = None  # a small JPEG of the image or the PDF's first page
    notes: tuple[str, ...] = field(default=())  # what was changed, in Chinese ("已缩小为 1500×1125 像素")


class DocumentRefused(ValueError):
    """The file is not accepted: ``message`` is Chinese and tells the student what to do; ``code`` is for
    logs and the API."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def refuse_if_full(stored: int, slot: SlotRules) -> None:
    """Refuse one more file when the slot already holds ``stored`` files."""
    if stored >= slot.max_files:
        raise DocumentRefused(
            f"这一项最多上传 {slot.max_files} 个文件，请先删除不需要的文件", "too_many_files"
        )
