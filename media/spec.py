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
    # "exact": the file must be width×height; "max": no larger than that (西北工业大学's 最大宽高).
    size_mode: Literal["exact", "max"] = "exact"
    formats: tuple[Literal["jpeg", "png"], ...] = ("jpeg",)
    min_bytes: int = Field(default=0, ge=0)
    max_bytes: int = Field(default=500 * 1024, ge=1024)
    background: Background = "light_blue"

    # Geometry, as fractions so one spec scales to any pixel size. Defaults: the national graduate-photo
    # standard at 480×640 (eyes 200–300 px from the top, crown 50–110 px, face 180–300 px wide).
    eye_line_min: float = Field(default=200 / 640, gt=0, lt=1)  # eye centre from the top, of the height
    eye_line_max: float = Field(default=300 / 640, gt=0, lt=1)
    crown_margin_min: float = Field(default=50 / 640, ge=0, lt=1)  # top of the head from the top edge
    crown_margin_max: float = Field(default=110 / 640, gt=0, lt=1)
    face_width_min: float = Field(default=180 / 480, gt=0, lt=1)  # face width, of the image width
    face_width_max: float = Field(default=300 / 480, gt=0, le=1)
    center_tolerance: float = Field(default=0.06, gt=0, lt=0.5)  # face centre off the middle, of the width
    head_ratio: float = Field(default=0.5, gt=0.2, lt=0.9)  # auto-fix: crown-to-chin height / image height
    max_roll_deg: float = Field(default=8.0, gt=0, le=45)  # eye line off the horizontal
    max_yaw_deg: float = Field(default=15.0, gt=0, le=60)  # estimated head turn
    # Background: CIELAB ΔE76 of the area around the head to the spec colour, and its uniformity.
    background_max_delta_e: float = Field(default=20.0, gt=0)
    background_max_std_l: float = Field(default=6.0, gt=0)  # std of L* over the background
    background_max_band_delta_e: float = Field(default=10.0, gt=0)  # between top, left and right bands
    background_max_outliers: float = Field(default=0.03, ge=0, le=1)  # share of pixels > 15 ΔE off
    # Exposure of the face: L* range, clipped pixels, left/right halves (阴阳脸).
    face_l_min: float = Field(default=45.0, ge=0, le=100)
    face_l_max: float = Field(default=85.0, ge=0, le=100)
    max_clipped: float = Field(default=0.02, ge=0, le=1)
    max_face_lr_diff: float = Field(default=12.0, gt=0)
    # Sharpness: Laplacian variance of the face scaled to 200 px wide, and the Crété-Roffet blur score
    # (0 sharp … 1 blurred); the variance alone varies 10× between people (docs/photo-checks.md).
    min_sharpness: float = Field(default=10.0, ge=0)
    max_blur: float = Field(default=0.65, gt=0, le=1)
    # The national standard asks for JPEG quality ≥ 60; auto-fix never encodes below this.
    min_jpeg_quality: int = Field(default=60, ge=1, le=100)

    @model_validator(mode="after")
    def _byte_range(self) -> PhotoSpec:
        if self.min_bytes >= self.max_bytes:
            raise ValueError("min_bytes must be below max_bytes")
        if not self.formats:
            raise ValueError("at least one format")
        if not (self.eye_line_min < self.eye_line_max and self.crown_margin_min < self.crown_margin_max):
            raise ValueError("eye line and crown margin ranges must be min < max")
        if not (self.face_width_min < self.face_width_max and self.face_l_min < self.face_l_max):
            raise ValueError("face width and face L* ranges must be min < max")
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
