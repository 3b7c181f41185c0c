"""A batch's photo specification: every number a school's manual states is a field here.

Kept in the batch as JSON and validated by this model, so a school with an unusual rule (a
maximum instead of an exact size, PNG allowed, a white background) needs data, not code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Background = Literal["light_blue", "blue", "white", "light_grey"]

BACKGROUND_LABELS: dict[str, str] = {
    "light_blue": "浅蓝色",
    "blue": "蓝色",
    "white": "白色",
    "light_grey": "浅灰色",
}
# The national graduate-photo standard's light blue is RGB(100, 197, 255).
BACKGROUND_RGB: dict[str, tuple[int, int, int]] = {
    "light_blue": (100, 197, 255),
    "blue": (67, 142, 219),
    "white": (255, 255, 255),
    "light_grey": (220, 220, 220),
}


class PhotoSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(default=480, ge=100, le=4000)
    height: int = Field(default=640, ge=100, le=4000)
    # "exact": the file must be width×height; "max": no larger than that (seed 000's 最大宽高).
    size_mode: Literal["exact", "max"] = "exact"
    formats: tuple[Literal["jpeg", "png"], ...] = ("jpeg",)
    min_bytes: int = Field(default=0, ge=0)
    max_bytes: int = Field(default=500 * 1024, ge=1024)
    background: Background = "light_blue"

    @model_validator(mode="after")
    def _byte_range(self) -> PhotoSpec:
        if self.min_bytes >= self.max_bytes:
            raise ValueError("min_bytes must be below max_bytes")
        if not self.formats:
            raise ValueError("at least one format")
        return self

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        return BACKGROUND_RGB[self.background]

    def describe(self) -> str:
        """The spec in the words of the schools' manuals, for pages and chat replies."""
        size = f"{self.width}×{self.height} 像素" + ("以内" if self.size_mode == "max" else "")
        formats = "/".join("JPG" if f == "jpeg" else "PNG" for f in self.formats)
        kb_max = self.max_bytes // 1024
        weight = f"{self.min_bytes // 1024}–{kb_max} KB" if self.min_bytes else f"不超过 {kb_max} KB"
        if self.max_bytes >= 1024 * 1024 and not self.min_bytes:
            weight = f"不超过 {self.max_bytes // (1024 * 1024)} MB"
        return f"{size}，{formats} 格式，{weight}，{BACKGROUND_LABELS[self.background]}背景"
