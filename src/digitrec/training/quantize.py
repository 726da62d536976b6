"""Static int8 quantisation with ONNX Runtime: `digitrec export RUN --int8`.

Static (not dynamic) because a CNN's cost is in its convolutions, and only static quantisation turns them
into integer kernels; activation ranges come from training-split images (never validation or test). QDQ
format with per-channel weights is what ONNX Runtime's CPU kernels fuse best. The result is a run folder of
its own (`RUN/int8`: model.onnx + model_card.json), so `load_model` and `digitrec serve --model` take it
unchanged, and its card carries its own test accuracy, calibration and the fp32 comparison.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from digitrec.card import CARD_FILE, ModelCard
from digitrec.errors import DigitrecError
from digitrec.fileio import sha256_file, write_atomic

CALIBRATION_IMAGES = 1000
CALIBRATION_SEED = 7


def calibration_images(data_dir: Path | None = None, n: int = CALIBRATION_IMAGES) -> np.ndarray:
    """n training-split images, class-balanced by a seeded draw: float32 (n, 1, 28, 28) in [0, 1]."""
    from digitrec.training import data as mnist

    ds = mnist.load_mnist(data_dir)
    train = mnist.stratified_split(ds.train_labels).train
    pick = np.random.default_rng(CALIBRATION_SEED).choice(train, size=min(n, len(train)), replace=False)
    return (ds.train_images[np.sort(pick)].astype(np.float32) / 255.0)[:, None]


def quantize_onnx(fp32: Path, out: Path, images: np.ndarray, batch: int = 100) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(images[i: i + batch] for i in range(0, len(images), batch))

        def get_next(self) -> dict | None:
            x = next(self.batches, None)
            return None if x is None else {"image": x}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"  # shapes inferred and graph optimised: what the quantiser expects
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        staged = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(staged), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        write_atomic(out, staged.read_bytes())


def images_per_second(onnx: Path, images: np.ndarray, repeats: int = 3) -> float:
    """Best of `repeats` passes over the images in batches of 1000, one thread (the serving setting)."""
    from digitrec.inference.predictor import load_model

    model = load_model(onnx, verify=False)
    model.predict_proba(images[:1000])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(images), 1000):
            model.predict_proba(images[i: i + 1000])
        best = min(best, time.perf_counter() - t0)
    return len(images) / best


def quantize_run(run: Path, out: Path | None = None, *, data_dir: Path | None = None) -> dict:
    """Quantise RUN/model.onnx into the folder `out` (default RUN/int8); returns the int8 model card."""
    from digitrec.training import data as mnist
    from digitrec.training.calibrate import calibrate_model
    from digitrec.training.evaluate import evaluate_model, val_accuracy
    from digitrec.training.runs import command_line

    fp32, card_path = run / "model.onnx", run / CARD_FILE
    if not (fp32.is_file() and card_path.is_file()):
        raise DigitrecError(f"{run} is not a trained run folder (model.onnx and model_card.json are needed)")
    out = out or run / "int8"
    out.mkdir(parents=True, exist_ok=True)
    (out / CARD_FILE).unlink(missing_ok=True)
    quantize_onnx(fp32, out / "model.onnx", calibration_images(data_dir))
    metrics = evaluate_model(out, data_dir=data_dir)
    fp32_card = ModelCard.read(card_path)
    test = mnist.load_mnist(data_dir).test_images
    fp32_speed, int8_speed = images_per_second(fp32, test), images_per_second(out / "model.onnx", test)
    card = replace(
        fp32_card,
        name=f"{fp32_card.name}-int8",
        onnx_sha256=sha256_file(out / "model.onnx"),
        onnx_torch_max_abs_diff=None,  # the int8 graph is not meant to match torch bit for bit
        test_accuracy=metrics["accuracy"], test_errors=metrics["errors"],
        val_accuracy=val_accuracy(out / "model.onnx", data_dir),
        per_class=metrics["per_class"], confusion_matrix=metrics["confusion_matrix"],
        quantization={
            "method": "ONNX Runtime static, QDQ, per-channel int8 weights, uint8 activations, MinMax",
            "calibration_images": f"{CALIBRATION_IMAGES} training-split images (seed {CALIBRATION_SEED})",
            "fp32_test_accuracy": fp32_card.test_accuracy,
            "accuracy_change_points": round((metrics["accuracy"] - fp32_card.test_accuracy) * 100, 4),
            "fp32_images_per_second": round(fp32_speed), "int8_images_per_second": round(int8_speed),
            "speedup": round(int8_speed / fp32_speed, 3),
            "command": command_line(),
        },
        calibration={**calibrate_model(out / "model.onnx", data_dir=data_dir), "command": command_line()},
    )
    card.write(out / CARD_FILE)
    return card
