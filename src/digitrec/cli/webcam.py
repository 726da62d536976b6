"""Read handwritten numbers from a camera or a video file, frame by frame (`digitrec webcam`).

Each frame goes through the same segmentation and preprocessing as an uploaded picture (segment.py), so what
the camera sees is read exactly as a photo of that sheet would be. OpenCV only captures, draws and shows:
`pip install 'digitrec[webcam]'` (the headless build, which has no window: then we run without one).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.inference.segment import NumberResult, read_number

WINDOW = "digitrec webcam (q to quit)"
BORDER = 2  # digits whose box touches the frame's edge are cut off (or are the edge of the sheet): skipped


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise DigitrecError(
            "the webcam needs OpenCV: pip install 'digitrec[webcam]' (opencv-python-headless)."
        ) from exc
    return cv2


def open_source(source: str | int) -> Any:
    """A camera index ("0", 0) or a video file path -> an opened cv2.VideoCapture."""
    cv2 = _cv2()
    src: str | int = int(source) if isinstance(source, int) or str(source).isdigit() else str(source)
    if isinstance(src, str) and not os.path.isfile(src):
        raise DigitrecError(f"video file {src!r} does not exist; pass a camera index (0) or a video file.")
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        what = f"camera {src}" if isinstance(src, int) else f"video {src!r}"
        raise DigitrecError(f"could not open {what}; check that it is connected / a readable video file.")
    return cap


@dataclass(frozen=True)
class Frame:
    index: int
    image: np.ndarray  # BGR, as OpenCV gives it
    result: NumberResult
    ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.index, "ms": round(self.ms, 1), **self.result.to_dict()}


def read_frame(model: Any, bgr: np.ndarray) -> NumberResult:
    """One frame -> the number on it, without pieces cut by the frame's edge."""
    h, w = bgr.shape[:2]
    res = read_number(model, np.ascontiguousarray(bgr[..., ::-1]))  # OpenCV is BGR, we are RGB
    kept = [
        d for d in res.digits
        if d.box[0] > BORDER and d.box[1] > BORDER
        and d.box[0] + d.box[2] < w - BORDER and d.box[1] + d.box[3] < h - BORDER
    ]
    conf = float(np.prod([d.confidence for d in kept])) if kept else 0.0
    return NumberResult("".join(str(d.digit) for d in kept), kept, conf)


def frames(model: Any, source: str | int, *, max_frames: int | None = None) -> Iterator[Frame]:
    """Read, recognise and yield each frame until the source ends (or `max_frames`)."""
    cap = open_source(source)
    try:
        i = 0
        while max_frames is None or i < max_frames:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            t = time.perf_counter()
            result = read_frame(model, bgr)
            yield Frame(i, bgr, result, (time.perf_counter() - t) * 1000)
            i += 1
    finally:
        cap.release()


def annotate(frame: Frame) -> np.ndarray:
    """The frame with a box and a label over each digit, and the number in the corner."""
    cv2 = _cv2()
    img = frame.image.copy()
    thick = max(1, round(max(img.shape[:2]) / 400))
    for d in frame.result.digits:
        x, y, w, h = d.box
        cv2.rectangle(img, (x, y), (x + w, y + h), (0, 160, 0), thick)
        cv2.putText(img, f"{d.digit} {d.confidence:.0%}", (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * thick, (0, 120, 255), thick, cv2.LINE_AA)
    text = frame.result.number or "-"
    cv2.putText(img, text, (8, 28 * thick), cv2.FONT_HERSHEY_SIMPLEX, thick, (255, 0, 0), 2 * thick,
                cv2.LINE_AA)
    return img


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_webcam(model: Any, source: str | int = 0, *, window: bool = True, as_json: bool = False,
               max_frames: int | None = None, out: TextIO | None = None) -> int:
    """Run the loop; prints one line per frame (JSON with `as_json`, else only when the number changes).
    A window is shown only when asked, a display exists and OpenCV was built with GUI support. Returns the
    number of frames read."""
    cv2 = _cv2()
    out = out or sys.stdout
    show = window and has_display()
    if window and not show:
        print("no display: running without a window (use --no-window to silence this).", file=sys.stderr)
    last, n = None, 0
    for frame in frames(model, source, max_frames=max_frames):
        n += 1
        if as_json:
            print(json.dumps(frame.to_dict()), file=out, flush=True)
        elif frame.result.number != last:
            label = frame.result.number or "no digits"
            print(f"frame {frame.index}: {label} ({frame.result.confidence:.1%})", file=out, flush=True)
        last = frame.result.number
        if show:
            try:
                cv2.imshow(WINDOW, annotate(frame))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            except cv2.error:  # the headless build has no GUI: carry on without a window
                print("OpenCV has no GUI support here: running without a window.", file=sys.stderr)
                show = False
    if show:
        cv2.destroyAllWindows()
    return n
