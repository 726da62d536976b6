"""The webcam loop on a video file the test writes with OpenCV (no camera needed): one JSON line per frame,
the number read on (nearly) every frame, boxes drawn, and clear errors for sources that cannot be opened."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from digitrec import load_model
from digitrec.errors import DigitrecError
from digitrec.testing.handwriting import draw_number, on_paper

cv2 = pytest.importorskip("cv2")

FRAMES = 12


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    """A hand-held look at a sheet with "42" on it: the sheet drifts a few pixels per frame."""
    drawing = draw_number("42", 11, gap=0.35, pen=9, height=120, margin=10)
    sheet = np.asarray(on_paper(drawing, 3, size=(400, 300)))[..., ::-1]  # RGB -> BGR
    path = str(tmp_path_factory.mktemp("video") / "sheet.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    assert writer.isOpened()
    for i in range(FRAMES):
        x, y = 40 + 2 * i, 30 + i
        writer.write(np.ascontiguousarray(sheet[y : y + 240, x : x + 320]))
    writer.release()
    return path


def test_json_lines_one_per_frame_with_the_number(model, video):
    from digitrec.cli.webcam import run_webcam

    out = io.StringIO()
    n = run_webcam(model, video, window=False, as_json=True, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert n == FRAMES and len(lines) == FRAMES
    assert [r["frame"] for r in lines] == list(range(FRAMES))
    assert sum(r["number"] == "42" for r in lines) >= FRAMES - 1
    for r in lines:
        assert set(r) >= {"frame", "ms", "number", "digits", "confidence"}
        for d in r["digits"]:
            x, y, w, h = d["box"]
            assert x > 0 and y > 0 and x + w < 320 and y + h < 240 and len(d["probabilities"]) == 10


def test_text_mode_prints_only_changes(model, video):
    from digitrec.cli.webcam import run_webcam

    out = io.StringIO()
    run_webcam(model, video, window=False, as_json=False, out=out, max_frames=5)
    lines = out.getvalue().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("frame 0: 42 (")


def test_annotated_frame_has_boxes(model, video):
    from digitrec.cli.webcam import annotate, frames

    frame = next(frames(model, video, max_frames=1))
    drawn = annotate(frame)
    assert drawn.shape == frame.image.shape and frame.result.digits
    x, y, w, h = frame.result.digits[0].box
    edge = drawn[y + h // 2, x].astype(int)
    assert edge[1] > edge[0] + 60 and edge[1] > edge[2] + 60  # a green box edge on grey paper


def test_sources_that_cannot_be_opened_are_one_clear_error(model, tmp_path):
    from digitrec.cli.webcam import run_webcam

    with pytest.raises(DigitrecError, match="does not exist"):
        run_webcam(model, str(tmp_path / "missing.mp4"), window=False)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(DigitrecError, match="could not open"):
        run_webcam(model, str(junk), window=False)
