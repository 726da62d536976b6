"""`digitrec predict --number`, `explain`, `webcam` and `calibrate`, run as a user runs them: output, files
written, one-line errors and non-zero exits on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.testing.handwriting import draw_number, on_paper
from digitrec.training.synth import render


def digitrec(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digitrec", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def one_line_error(r: subprocess.CompletedProcess, phrase: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and phrase in r.stderr, r.stderr
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    draw_number("2024", 1).save(d / "2024.png")
    on_paper(draw_number("581", 2), 1).convert("RGB").save(d / "581.jpg", quality=92)
    render(6, np.random.default_rng(6), "canvas").save(d / "six.png")
    Image.new("L", (300, 120), 255).save(d / "blank.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return {p.name: p for p in d.iterdir()}


def test_predict_number_text_and_json(files):
    r = digitrec("predict", "--number", files["2024.png"], files["581.jpg"], files["blank.png"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{files['2024.png']}: 2024 (") and lines[0].endswith("%)")
    assert lines[1].startswith(f"{files['581.jpg']}: 581 (")
    assert lines[2] == f"{files['blank.png']}: no digits"
    r = digitrec("predict", "--number", "--json", files["2024.png"])
    record = json.loads(r.stdout)
    assert record["number"] == "2024" and len(record["digits"]) == 4
    assert [d["box"][0] for d in record["digits"]] == sorted(d["box"][0] for d in record["digits"])


def test_predict_number_unreadable_file_is_a_one_line_error_after_the_others(files):
    r = digitrec("predict", "--number", files["broken.png"], files["2024.png"])
    assert r.returncode == 1
    assert r.stdout.splitlines() == [line for line in r.stdout.splitlines() if "2024 (" in line] != []
    assert "broken.png: error:" in r.stderr and "1 of 2 file(s) could not be read" in r.stderr
    assert "Traceback" not in r.stderr


def test_predict_json_says_why_there_is_no_digit(files):
    r = digitrec("predict", "--json", files["blank.png"], files["six.png"])
    blank, six = (json.loads(line) for line in r.stdout.splitlines())
    assert blank["digit"] is None and blank["reason"] == "blank"
    assert six["digit"] == 6 and six["reason"] is None


def test_explain_writes_a_heat_map_over_the_input(files, tmp_path):
    out = tmp_path / "heat.png"
    r = digitrec("explain", files["six.png"], "--out", out, "--scale", "8")
    assert r.returncode == 0, r.stderr
    assert f"{files['six.png']}: 6 (" in r.stdout and str(out) in r.stdout
    heat = np.asarray(Image.open(out))
    assert heat.shape == (224, 224, 3)
    # Warm colours (red > blue) where the saliency is, grey (r == g == b) elsewhere.
    warm = heat[..., 0].astype(int) - heat[..., 2] > 40
    assert 0.02 < warm.mean() < 0.8


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["blank.png", "--out", "{tmp}/h.png"], "no digit to explain"),
        (["broken.png", "--out", "{tmp}/h.png"], "broken.png"),
        (["six.png", "--out", "{tmp}/h.jpg"], "must be a .png"),
        (["six.png", "--out", "{tmp}/missing/dir/h.png"], "cannot write"),
        (["gone.png", "--out", "{tmp}/h.png"], "gone.png"),
    ],
)
def test_explain_bad_input_is_a_one_line_error(files, tmp_path, args, phrase):
    folder = files["six.png"].parent
    argv = [a.format(tmp=tmp_path) if "{tmp}" in a else str(folder / a) if a.endswith(".png") else a
            for a in args]
    one_line_error(digitrec("explain", *argv), phrase)


def test_webcam_on_a_video_file_prints_json_lines(files, tmp_path):
    cv2 = pytest.importorskip("cv2")
    sheet = np.asarray(on_paper(draw_number("42", 11, gap=0.35, pen=9, height=120, margin=10), 3,
                                size=(400, 300)))[..., ::-1]
    path = tmp_path / "sheet.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for i in range(5):
        writer.write(np.ascontiguousarray(sheet[30 + i : 270 + i, 40 + 2 * i : 360 + 2 * i]))
    writer.release()
    r = digitrec("webcam", "--source", path, "--no-window", "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["frame"] for x in lines] == list(range(5))
    assert sum(x["number"] == "42" for x in lines) >= 4
    r = digitrec("webcam", "--source", path, "--no-window", "--max-frames", "2")
    assert r.returncode == 0 and r.stdout.startswith("frame 0: 42")


def test_webcam_missing_video_is_a_one_line_error(tmp_path):
    one_line_error(digitrec("webcam", "--source", tmp_path / "none.mp4", "--no-window"), "does not exist")


def test_calibrate_missing_model_is_a_one_line_error(tmp_path):
    one_line_error(digitrec("calibrate", tmp_path / "nothing.onnx"), "does not exist")
