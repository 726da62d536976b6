"""The training-half commands as a user meets them: clear one-line errors, non-zero exits, no tracebacks."""

import csv
import subprocess
import sys

import numpy as np
import pytest


def digitrec(*args, **kw):
    return subprocess.run([sys.executable, "-m", "digitrec", *map(str, args)], capture_output=True, text=True,
                          **kw)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A random-weight model that honours the ONNX contract (for plumbing, not accuracy)."""
    import torch

    from digitrec.training.export import export_onnx
    from digitrec.training.models import ModelConfig, build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "model.onnx"
    export_onnx(build_model(ModelConfig("fast", 8)).eval(), path)
    return path


def write_csv(path, rows, header=None):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header or [f"pixel{i}" for i in range(784)])
        w.writerows(rows)
    return path


def assert_clean_failure(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    for f in fragments:
        assert f in proc.stderr, proc.stderr


def test_submit_writes_kaggle_format_with_ids_from_one(tiny_onnx, tmp_path):
    rows = np.random.default_rng(0).integers(0, 256, size=(5, 784)).tolist()
    out = tmp_path / "submission.csv"
    proc = digitrec("submit", "--test", write_csv(tmp_path / "test.csv", rows), "--out", out, "--model", tiny_onnx)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 6
    ids, labels = zip(*(line.split(",") for line in lines[1:]), strict=True)
    assert ids == ("1", "2", "3", "4", "5") and all(0 <= int(v) <= 9 for v in labels)


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([[0] * 783], None, "expected 784 values, found 783"),
        ([[0] * 783 + ["x"]], None, "'x' is not a whole number"),
        ([[0] * 783 + [256]], None, "between 0 and 255"),
        ([[0] * 783 + [-1]], None, "between 0 and 255"),
        ([[0] * 784], ["label"] + [f"pixel{i}" for i in range(783)], "header must be pixel0..pixel783"),
        ([], None, "no images"),
    ],
)
def test_submit_rejects_malformed_csv_with_a_clear_message(tiny_onnx, tmp_path, rows, header, message):
    test_csv = write_csv(tmp_path / "bad.csv", rows, header)
    out = tmp_path / "submission.csv"
    proc = digitrec("submit", "--test", test_csv, "--out", out, "--model", tiny_onnx)
    assert_clean_failure(proc, message)
    assert not out.exists()


def test_submit_with_a_missing_file_is_a_clear_error(tmp_path, tiny_onnx):
    assert_clean_failure(digitrec("submit", "--test", tmp_path / "nope.csv", "--model", tiny_onnx), "does not exist")


def test_unknown_preset_is_a_clear_error(tmp_path):
    assert_clean_failure(digitrec("train", "--preset", "turbo", "--out", tmp_path / "r"), "unknown preset 'turbo'")


def test_label_smoothing_out_of_range_is_a_clear_error(tmp_path):
    assert_clean_failure(digitrec("train", "--label-smoothing", "0.7", "--out", tmp_path / "r"), "label-smoothing")
    assert not (tmp_path / "r").exists()


def test_bad_device_is_a_clear_error(tmp_path):
    assert_clean_failure(digitrec("train", "--device", "tpu", "--out", tmp_path / "r"), "--device must be")


def test_export_of_a_non_run_folder_is_a_clear_error(tmp_path):
    assert_clean_failure(digitrec("export", tmp_path), "not a run folder")


def test_evaluate_of_something_that_is_not_a_model_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    assert_clean_failure(digitrec("evaluate", tmp_path / "notes.txt"), "neither a run folder nor an .onnx file")


def test_help_lists_every_command():
    out = digitrec("--help").stdout
    for cmd in ("data", "train", "export", "evaluate", "submit", "doctor", "predict", "serve"):
        assert cmd in out


def test_doctor_reports_dependencies_and_passes_in_the_full_install():
    proc = digitrec("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("python", "torch", "onnxruntime", "fastapi", "mnist cache", "bundled model"):
        assert name in proc.stdout


def test_doctor_fails_when_an_installed_extra_is_broken(tmp_path):
    # A module that shadows onnxruntime and fails to import: what a broken install looks like.
    (tmp_path / "onnxruntime").mkdir()
    (tmp_path / "onnxruntime" / "__init__.py").write_text("raise ImportError('simulated broken build')")
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "200"}
    proc = digitrec("doctor", env=env)
    assert proc.returncode != 0
    assert "simulated broken build" in proc.stdout and "broken: onnxruntime" in proc.stderr


def test_old_preset_name_seed_still_works_with_a_deprecation_warning():
    proc = digitrec("train", "--preset", "seed", "--device", "tpu")
    assert "--preset seed is deprecated, use --preset reference" in proc.stderr
    assert_clean_failure(proc, "--device must be auto, cpu or cuda")


def test_serve_takes_every_setting_from_the_environment_unless_a_flag_says_otherwise(monkeypatch):
    pytest.importorskip("fastapi")
    from typer.testing import CliRunner

    import digitrec.web.server as server
    from digitrec.cli import app

    seen = {}
    monkeypatch.setattr(server, "serve", lambda **kw: seen.update(kw))
    env = {"DIGITREC_CORS_ORIGINS": "https://a.example,https://b.example", "DIGITREC_CANDIDATE_SHARE": "0.3",
           "DIGITREC_ACCESS_LOG": "0", "DIGITREC_MAX_HEAVY": "3", "DIGITREC_DB": "off"}
    result = CliRunner().invoke(app, ["serve"], env=env)
    assert result.exit_code == 0, result.output
    s = seen["settings"]
    assert s.cors_origins == ("https://a.example", "https://b.example") and s.candidate_share == 0.3
    assert s.access_log is False and s.max_heavy == 3
    result = CliRunner().invoke(app, ["serve", "--cors-origin", "https://c.example", "--candidate-share", "0.5",
                                      "--access-log"], env=env)
    assert result.exit_code == 0, result.output
    s = seen["settings"]
    assert s.cors_origins == ("https://c.example",) and s.candidate_share == 0.5 and s.access_log is True
