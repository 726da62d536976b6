"""Run folder -> model.onnx, checked against torch before anyone relies on it.

The ONNX contract every later stage uses: input float32 (N, 1, 28, 28) in [0, 1], white ink on black,
normalisation inside the graph; output (N, 10) logits; the batch axis is dynamic.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.fileio import write_atomic
from digitrec.training.models import Ensemble, ModelConfig, build_model

INPUT_NAME, OUTPUT_NAME = "image", "logits"
OPSET = 17
PARITY_TOLERANCE = 1e-4


def save_weights(model: nn.Module, path: Path) -> None:
    """safetensors: loading it can never run code, unlike a pickle."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))


def load_run_model(run: Path) -> nn.Module:
    """Rebuild a model from a run folder's config.json and model.safetensors."""
    from safetensors.torch import load_file

    config_path, weights_path = run / "config.json", run / "model.safetensors"
    if not config_path.is_file():
        raise DigitrecError(f"{run} is not a run folder: config.json is missing")
    model_dict = json.loads(config_path.read_text())["model"]
    if model_dict["arch"] == "ensemble":  # an ensemble folder: its members are run folders inside it
        return Ensemble([load_run_model(run / member) for member in model_dict["members"]]).eval()
    if not weights_path.is_file():
        raise DigitrecError(f"{run} is not a run folder: model.safetensors is missing")
    model_cfg = ModelConfig(**model_dict)
    model = build_model(model_cfg)
    model.load_state_dict(load_file(str(weights_path)))
    return model.eval()


def export_onnx(model: nn.Module, path: Path, *, check_images: np.ndarray | None = None) -> float:
    """Write the ONNX file atomically and return the max |onnxruntime - torch| on the check batch."""
    model = copy_for_export(model)
    dummy = torch.zeros(2, 1, 28, 28)
    buffer = io.BytesIO()  # checked in memory: only a graph that agrees with torch reaches the disk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not the user's problem
        torch.onnx.export(
            model, (dummy,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=OPSET,
            dynamo=False, do_constant_folding=True,
        )
    diff = parity(model, buffer.getvalue(), check_images)
    if diff >= PARITY_TOLERANCE:
        raise DigitrecError(f"ONNX export disagrees with torch by {diff:.2e} (limit {PARITY_TOLERANCE:g})")
    write_atomic(path, buffer.getvalue())
    return diff


def copy_for_export(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).cpu().to(memory_format=torch.contiguous_format).eval()


def parity(model: nn.Module, onnx: bytes, images: np.ndarray | None = None) -> float:
    """Max absolute logit difference between ONNX Runtime and torch on real (or random) images."""
    import onnxruntime as ort

    if images is None:
        images = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    x = np.asarray(images, dtype=np.float32).reshape(-1, 1, 28, 28)
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    return float(np.abs(got - want).max())


def export_run(run: Path, out: Path | None = None) -> tuple[Path, float]:
    """`digitrec export RUN [--out FILE]`: rebuild the model from the run folder and export it."""
    model = load_run_model(run)
    out = out or run / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out, export_onnx(model, out)
