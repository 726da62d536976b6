"""Ensembles, distillation and int8 on tiny real runs: the graphs compute what they claim, the folders load."""

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

from digitrec import load_model
from digitrec.testing.cli import digitrec
from digitrec.training.calibrate import onnx_logits, softmax
from digitrec.training.data import load_mnist
from digitrec.training.recipes import PRESETS
from tests import ROOT

pytestmark = pytest.mark.slow

SMALL = ["--limit", "3000", "--epochs", "3", "--batch-size", "100", "--quiet"]
TINY = ["--preset", "fast", *SMALL]


@pytest.fixture(scope="module")
def ensemble_run(mnist_cache, tmp_path_factory):
    run = tmp_path_factory.mktemp("frontier") / "ens"
    digitrec("train", *TINY, "--ensemble", "2", "--seed", "3", "--out", run)
    return run


def test_ensemble_trains_each_member_and_exports_the_average_of_their_probabilities(ensemble_run):
    card = json.loads((ensemble_run / "model_card.json").read_text())
    assert [m["seed"] for m in card["members"]] == [3, 4]
    members = [ensemble_run / m["run"] for m in card["members"]]
    assert all((m / "model_card.json").is_file() for m in members)
    accs = [m["test_accuracy"] for m in card["members"]]
    stats = card["member_test_accuracy"]
    assert stats["n"] == 2 and stats["mean"] == pytest.approx(np.mean(accs), abs=1e-6)
    assert stats["std"] == pytest.approx(np.std(accs, ddof=1), abs=1e-6)
    assert card["name"] == "digitrec-ensemble2" and "--ensemble 2" in card["training_command"]

    images = load_mnist().test_images[:200].astype(np.float32) / 255
    mean = np.mean([softmax(onnx_logits(m / "model.onnx", images)) for m in members], axis=0)
    np.testing.assert_allclose(softmax(onnx_logits(ensemble_run / "model.onnx", images)), mean, atol=1e-5)
    assert load_model(ensemble_run).card["onnx_sha256"] == card["onnx_sha256"]  # the card pins its own ONNX


def test_a_finished_ensemble_member_is_reused_not_retrained(ensemble_run):
    member = ensemble_run / "members" / "seed-3" / "model.onnx"
    before = member.stat().st_mtime_ns
    digitrec("train", *TINY, "--ensemble", "2", "--seed", "3", "--out", ensemble_run)
    assert member.stat().st_mtime_ns == before
    assert load_model(ensemble_run).predict_proba(np.zeros((1, 28, 28), np.uint8)).shape == (1, 10)


def test_runs_of_different_recipes_combine_into_one_standalone_ensemble(ensemble_run, tmp_path):
    student = tmp_path / "runs" / "student"
    digitrec("train", "--preset", "student", *SMALL, "--seed", "7", "--out", student)
    mix = tmp_path / "mix"
    done = digitrec("ensemble", ensemble_run, student, "--out", mix)
    assert "test accuracy" in done.stdout
    card = json.loads((mix / "model_card.json").read_text())
    assert [m["run"] for m in card["members"]] == ["members/ens-seed-3", "members/ens-seed-4", "members/student"]
    assert card["name"] == "digitrec-ensemble3" and set(card["recipe"]["members"]) == {"ens-seed-3", "ens-seed-4",
                                                                                       "student"}
    assert card["recipe"]["members"]["student"]["width"] == PRESETS["student"].width
    assert not (mix / "members" / "student" / "checkpoint.pt").exists()  # copied without what only --resume needs
    images = load_mnist().test_images[:200].astype(np.float32) / 255
    sources = [ensemble_run / "members" / "seed-3", ensemble_run / "members" / "seed-4", student]
    mean = np.mean([softmax(onnx_logits(m / "model.onnx", images)) for m in sources], axis=0)
    np.testing.assert_allclose(softmax(onnx_logits(mix / "model.onnx", images)), mean, atol=1e-5)
    # The folder stands alone: with the sources gone it still loads, serves and can be re-exported.
    shutil.rmtree(student)
    assert load_model(mix).predict_proba(np.zeros((2, 28, 28), np.uint8)).shape == (2, 10)
    assert digitrec("export", mix, "--out", tmp_path / "again.onnx").returncode == 0


@pytest.mark.parametrize("case", ["exists", "inside", "twice", "one", "not a run", "unfinished member"])
def test_combining_refuses_bad_input_with_one_line(ensemble_run, tmp_path, case):
    out = tmp_path / "mix"
    broken = tmp_path / "broken"
    if case == "unfinished member":  # an ensemble folder whose member lost its weights
        shutil.copytree(ensemble_run, broken)
        (broken / "members" / "seed-4" / "model.safetensors").unlink()
    args = {"exists": [ensemble_run], "inside": [ensemble_run],
            "twice": [ensemble_run, ensemble_run / "members" / "seed-3"],
            "one": [ensemble_run / "members" / "seed-3"], "not a run": [ensemble_run, tmp_path],
            "unfinished member": [broken]}[case]
    if case == "exists":
        out = ensemble_run  # would overwrite the source itself: never
    if case == "inside":
        out = ensemble_run / "members" / "seed-3" / "mix"  # copying a member into itself would never end
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    bad = digitrec("ensemble", *args, "--out", out, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "error:" in bad.stderr
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before


def test_the_ensemble_benchmark_chooses_on_validation_and_reports_test(ensemble_run):
    a, b = ensemble_run / "members" / "seed-3", ensemble_run / "members" / "seed-4"
    script = ROOT / "benchmarks" / "ensembles.py"
    done = subprocess.run([sys.executable, script, f"a={a}", f"b={b}", "--json"], capture_output=True, text=True,
                          check=True)
    report = json.loads(done.stdout[done.stdout.index("{"):])
    rows = {r["candidate"]: r for r in report["rows"]}
    assert list(rows) == ["a", "b", "a + b"] and rows["a + b"]["members"] == 2
    ds = load_mnist()
    for name, runs in {"a": [a], "b": [b], "a + b": [a, b]}.items():
        mean = np.mean([load_model(r, verify=False).predict_proba(ds.test_images) for r in runs], axis=0)
        assert rows[name]["test_errors"] == int((mean.argmax(1) != ds.test_labels).sum())
    assert rows[report["chosen"]]["val_errors"] == min(r["val_errors"] for r in rows.values())
    assert "← chosen on validation" in done.stdout
    bad = subprocess.run([sys.executable, script, "nonsense"], capture_output=True, text=True)
    assert bad.returncode != 0 and "NAME=RUN" in bad.stderr and "Traceback" not in bad.stderr


def test_distillation_trains_a_student_from_the_ensembles_soft_labels(ensemble_run, tmp_path):
    student = tmp_path / "student"
    digitrec("train", "--preset", "student", *SMALL, "--teacher", ensemble_run, "--out", student)
    card = json.loads((student / "model_card.json").read_text())
    assert card["recipe"]["teacher"] == str(ensemble_run) and card["arch"]["width"] == PRESETS["student"].width
    assert card["test_accuracy"] > 0.6

    missing = digitrec("train", "--preset", "student", "--teacher", tmp_path / "nope", check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "is not a run folder" in missing.stdout + missing.stderr


def test_int8_export_quantises_the_convolutions_and_keeps_the_answers(ensemble_run):
    member = ensemble_run / "members" / "seed-3"
    digitrec("export", member, "--int8")
    int8 = member / "int8"
    ops = {node.op_type for node in onnx.load(int8 / "model.onnx").graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    card = json.loads((int8 / "model_card.json").read_text())
    q = card["quantization"]
    assert card["name"].endswith("-int8") and q["fp32_test_accuracy"] == json.loads(
        (member / "model_card.json").read_text())["test_accuracy"]
    assert q["speedup"] > 0 and abs(q["accuracy_change_points"]) < 1.0

    images = load_mnist().test_images[:500]
    agree = (load_model(int8).predict(images) == load_model(member).predict(images)).mean()
    assert agree > 0.97  # int8 rounding may flip a rare borderline image, not the model's answers

    bad = digitrec("export", ensemble_run / "missing", "--int8", check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
