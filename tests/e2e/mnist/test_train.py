"""Training on the real MNIST (a few thousand images): loss goes down, resume is exact, DDP runs."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from digitrec import load_model
from digitrec.testing.cli import digitrec

pytestmark = pytest.mark.slow

TINY = ["--preset", "fast", "--limit", "3000", "--batch-size", "100", "--quiet"]


def log_rows(run):
    path = run / "training_log.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_short_run_lowers_the_loss_and_writes_the_whole_run_folder(mnist_cache, tmp_path):
    run = tmp_path / "run"
    digitrec("train", *TINY, "--epochs", "3", "--out", run)
    rows = log_rows(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["val_loss"]) < 1.0 and float(rows[-1]["val_acc"]) > 0.8
    for name in ("model.onnx", "model.safetensors", "config.json", "checkpoint.pt", "training_log.csv",
                 "metrics.json", "model_summary.txt", "model_card.json", "training_curves.png",
                 "confusion_matrix.png", "misclassified.png", "architecture.png", "first_layer_filters.png",
                 "mean_saliency.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["count"] == 10000 and metrics["accuracy"] > 0.8
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["checksums_md5"]["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert config["recipe"]["limit"] == 3000 and "torch" in config["library_versions"]
    card = json.loads((run / "model_card.json").read_text())
    assert card["test_accuracy"] == metrics["accuracy"] and card["onnx_torch_max_abs_diff"] < 1e-4

    cal = card["calibration"]
    assert cal["ece_after"] <= cal["ece_before"] and cal["temperature"] > 0
    assert cal["command"].startswith("digitrec train")
    assert load_model(run).rules.temperature == cal["temperature"]  # the card still pins the ONNX file

    # A second run into the same folder replaces the model, and the old card must not get in its way.
    digitrec("train", *TINY, "--epochs", "1", "--seed", "1", "--label-smoothing", "0", "--out", run)
    again = json.loads((run / "model_card.json").read_text())
    assert again["onnx_sha256"] != card["onnx_sha256"] and again["epochs_run"] == 1
    assert again["recipe"]["label_smoothing"] == 0.0 and card["recipe"]["label_smoothing"] == 0.1  # fast's


def test_resume_after_sigkill_matches_uninterrupted_run(mnist_cache, tmp_path):
    args = [*TINY, "--epochs", "4", "--seed", "7"]
    whole = tmp_path / "whole"
    digitrec("train", *args, "--out", whole)

    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "train", *args, "--out", str(cut)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(log_rows(cut)) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # really killed mid-run, not finished
    done = len(log_rows(cut))
    assert 1 <= done < 4
    assert not (cut / "model.safetensors").exists()

    digitrec("train", *args, "--out", cut, "--resume")
    a, b = load_file(whole / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
    assert [r["val_loss"] for r in log_rows(cut)] == [r["val_loss"] for r in log_rows(whole)]


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    proc = digitrec("train", *TINY, "--out", tmp_path / "none", "--resume", check=False)
    assert proc.returncode != 0
    assert "checkpoint.pt does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_torchrun_with_two_cpu_processes_trains_and_writes_one_run_folder(mnist_cache, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as sock:  # a free port for the rendezvous (torchrun has no 'pick one' option)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={port}",
         "-m", "digitrec", "train", *TINY, "--epochs", "2", "--device", "cpu", "--out", str(run)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = log_rows(run)
    assert len(rows) == 2 and float(rows[-1]["val_acc"]) > 0.7
    assert json.loads((run / "model_card.json").read_text())["test_accuracy"] > 0.7


def test_extra_data_from_feedback_is_appended_to_the_training_set(mnist_cache, tmp_path):
    from digitrec.feedback.store import IMAGES_FILE, LABELS_FILE
    from digitrec.fileio import encode_idx

    extra = tmp_path / "extra"
    extra.mkdir()
    rng = np.random.default_rng(0)
    (extra / IMAGES_FILE).write_bytes(encode_idx(rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)))
    (extra / LABELS_FILE).write_bytes(encode_idx(rng.integers(0, 10, 200, dtype=np.uint8)))
    run = tmp_path / "run"
    digitrec("train", "--preset", "fast", "--limit", "1000", "--epochs", "1", "--quiet", "--extra-data", extra,
             "--out", run)
    data = json.loads((run / "config.json").read_text())["data"]
    assert data["train_images"] == 1200 and data["extra_data"] == str(extra)

    bad = digitrec("train", "--limit", "1000", "--epochs", "1", "--extra-data", tmp_path, "--out", run, check=False)
    assert bad.returncode != 0 and "feedback export" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_run_writes_its_run_folder_on_the_cpu(mnist_cache, tmp_path):
    """The model trains on the GPU, then the run folder (summary, export, plots) is written on the CPU."""
    run = tmp_path / "run"
    digitrec("train", *TINY, "--epochs", "3", "--device", "cuda", "--out", run)
    card = json.loads((run / "model_card.json").read_text())
    assert card["device"] == "cuda" and card["test_accuracy"] > 0.8 and card["onnx_torch_max_abs_diff"] < 1e-4
