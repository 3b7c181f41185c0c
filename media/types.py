"""The pipeline's result types (re-exported by media.pipeline)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One check's verdict. ``message`` is Chinese and tells the student what to do (or 符合要求).

    ``blocking=False`` marks an advisory check (e.g. the scan/print heuristic): shown, never fails the photo.
    """

    name: str
    ok: bool
    value: float | str | None
    limit: str | None
    message: str
    blocking: bool = True


@dataclass(frozen=True)
class FaceBox:
    """The face in the normalised image's pixels; eyes as seen in the image (left_eye is on the left)."""

    x: int
    y: int
    w: int
    h: int
    left_eye: tuple[int, int] | None
    right_eye: tuple[int, int] | None


@dataclass(frozen=True)
class Result:
    passed: bool
    checks: list[Check]
    fixes: list[str]  # what auto-fix did, in Chinese ("已裁剪为 480×640", "已压缩到 152 KB")
    normalized: bytes | None  # the file to submit (JPEG/PNG per spec), metadata stripped
    width: int | None
    height: int | None
    format: str | None  # "jpeg" | "png"
    face: FaceBox | None
    phash: str | None  # 64-bit DCT perceptual hash of the normalised image, 16 hex digits

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


class UnreadableImageError(ValueError):
    """Not an image we accept at all (wrong type, damaged, a bomb, absurd size): the API answers 422."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
