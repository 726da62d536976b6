"""A trained model becomes a run folder: weights, config, ONNX, metrics, plots and the model card.

The model card (digitrec.card.ModelCard, model_card.json beside model.onnx) is what the serving half reads: it
says what the model is, how it was made (the exact command), how good it is, and pins the ONNX file by sha256.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
import shlex
import subprocess
import sys
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from digitrec.card import CARD_FILE, InputSpec, ModelCard
from digitrec.fileio import sha256_file, write_json
from digitrec.training import data as mnist


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("digitrec", "torch", "numpy", "onnx", "onnxruntime"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return proc.stdout.strip() or None if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def command_line() -> str:
    """The command that is running, as a user would type it."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("digitrec", "__main__.py", "-m"):
        argv[0] = "digitrec"
    # A resumed run ends with exactly the weights of an uninterrupted one, so the command that reproduces
    # the model is the same command without --resume.
    return shlex.join(a for a in argv if a != "--resume")


def write_run_folder(result, cfg, *, device: str, seconds: float, data_dir: Path | None = None) -> ModelCard:
    """Everything after the last epoch: weights, config, summary, ONNX, test metrics, plots, model card."""
    from digitrec.training import report
    from digitrec.training.evaluate import evaluate_model
    from digitrec.training.export import export_onnx, save_weights
    from digitrec.training.models import count_parameters

    out: Path = result.out
    model = result.model
    # A card left by an earlier run in this folder describes another model.onnx: it must not vouch for ours.
    (out / CARD_FILE).unlink(missing_ok=True)
    save_weights(model, out / "model.safetensors")
    trainable, total = count_parameters(model)
    config = {
        "model": cfg.model_config().to_dict(),
        "recipe": cfg.to_dict(),
        "seed": cfg.seed,
        "parameters": {"trainable": trainable, "total": total},
        "data": {"checksums_md5": mnist.checksums(), "train": "54k stratified split of the 60k training set",
                 "val": 6000, "split_seed": mnist.SPLIT_SEED, "limit": cfg.limit,
                 "train_images": result.train_images, "extra_data": cfg.extra_data},
        "device": device,
        "command": command_line(),
        "git_commit": git_commit(),
        "library_versions": library_versions(),
        "training_seconds": round(seconds, 1),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
    }
    write_json(out / "config.json", config)
    (out / "model_summary.txt").write_text(report.model_summary(model))
    report.plot_architecture(model, out / "architecture.png")
    parity = export_onnx(model, out / "model.onnx")
    metrics = evaluate_model(out, data_dir=data_dir)
    calibration = write_insight(out, data_dir=data_dir, smoke=cfg.limit is not None)
    card = replace(build_model_card(out, config, metrics, parity),
                   calibration={**calibration, "command": config["command"]})
    card.write(out / CARD_FILE)
    return card


def write_insight(out: Path, *, data_dir: Path | None = None, smoke: bool = False) -> dict:
    """The exported model's first-layer filters and mean saliency per class (on validation images), and its
    calibration (returned, for the card). Smoke runs (--limit) fit and plot on fewer images: seconds, not tens."""
    from digitrec.inference.predictor import load_model
    from digitrec.training.calibrate import calibrate_model
    from digitrec.training.insight_plots import plot_first_layer_filters, plot_mean_saliency_per_class

    onnx = out / "model.onnx"
    plot_first_layer_filters(onnx, out / "first_layer_filters.png")
    data = mnist.load_mnist(data_dir)
    val = mnist.stratified_split(data.train_labels).val
    plot_mean_saliency_per_class(load_model(onnx, verify=False), data.train_images[val], data.train_labels[val],
                                 out / "mean_saliency.png", per_class=4 if smoke else 20)
    return calibrate_model(onnx, data_dir=data_dir, synthetic=100 if smoke else 500)


def build_model_card(run: Path, config: dict, metrics: dict, parity: float) -> ModelCard:
    hist = json.loads(json.dumps(config))
    val_acc = None
    log = run / "training_log.csv"
    if log.is_file():
        import csv

        with open(log, newline="") as fh:
            rows = list(csv.DictReader(fh))
        best = [r for r in rows if int(r["epoch"]) == config["best_epoch"]]
        val_acc = float(best[0]["val_acc"]) if best else None
    recipe = hist["recipe"]
    return ModelCard(
        name=f"digitrec-{recipe['arch']}",
        version=dt.date.today().isoformat(),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        arch=config["model"],
        parameters=config["parameters"],
        onnx_file="model.onnx",
        onnx_sha256=sha256_file(run / "model.onnx"),
        onnx_torch_max_abs_diff=parity,
        input=InputSpec(),
        test_accuracy=metrics["accuracy"],
        test_errors=metrics["errors"],
        val_accuracy=val_acc,
        per_class=metrics["per_class"],
        confusion_matrix=metrics["confusion_matrix"],
        data_checksums=config["data"]["checksums_md5"],
        training_command=config["command"],
        training_seconds=config["training_seconds"],
        epochs_run=config["epochs_run"],
        recipe=recipe,
        device=config["device"],
        library_versions=config["library_versions"],
        git_commit=config["git_commit"],
    )
