"""ONNX Runtime inference: the one place the serving half runs a model.

No torch here, ever: `pip install digitrec[serve]` must be enough. The model contract (see export.py):
input float32 (N, 1, 28, 28) in [0, 1], white ink on black, normalisation inside the graph; output (N, 10)
logits; dynamic batch axis. A `model_card.json` beside the ONNX file, when present, is checked against it.

When the card holds a "calibration" entry (`digitrec calibrate`, see calibrate.py), its temperature divides
the logits before the softmax, so every probability this module returns is calibrated, and its rules turn an
answer into "no digit" (`Prediction.reason`) when the input is not digit-like or the confidence too low.
When it holds a "gate" entry (gate.py), a second tiny network beside the model refuses what is no digit, and
answers a low-confidence digit that it is sure is a digit.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digitrec.card import CARD_FILE, InputSpec, ModelCard
from digitrec.errors import DigitrecError
from digitrec.inference.gate import Gate
from digitrec.inference.rules import Rules, softmax
from digitrec.inference.shapes import refuse_outlines
from digitrec.paths import BUNDLED_DIR

MODEL_ENV = "DIGITREC_MODEL"
"""Environment variable naming the model `load_model()` uses when given no path (also how `serve`
hands the model to worker processes)."""

MODEL_FILE = "model.onnx"
# Chunk large inputs so that a million images never need one giant tensor.
_CHUNK = 1024


@dataclass(frozen=True)
class Prediction:
    """One answer. `digit` is None when we report "no digit" rather than guess; `reason` says why:
    "blank", "not_digit_like" or "low_confidence" (None when there is a digit).

    For a blank image `confidence` is 0.0 and `probabilities` are ten zeros (not a uniform guess: the model
    was never asked), and `input` is None. Otherwise `input` is the (28, 28) float32 image the model saw, and
    for a rejected one `probabilities` and `confidence` (the top probability) say what the model would have
    answered, so a client can show why it was refused.
    """

    digit: int | None
    confidence: float
    probabilities: tuple[float, ...]
    input: np.ndarray | None = field(default=None, repr=False, compare=False)
    reason: str | None = None

    @property
    def is_blank(self) -> bool:
        """Nothing drawn (not the same as a refused drawing: see `reason`)."""
        return self.reason == "blank"


BLANK = Prediction(digit=None, confidence=0.0, probabilities=(0.0,) * 10, input=None, reason="blank")


def resolve_model_path(path: str | os.PathLike[str] | None = None) -> Path:
    """None -> $DIGITREC_MODEL or the bundled model; a folder -> its model.onnx; a file -> itself."""
    if path is None:
        env = os.environ.get(MODEL_ENV)
        path = Path(env).expanduser() if env else BUNDLED_DIR
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
        if not p.is_file():
            raise DigitrecError(
                f"no {MODEL_FILE} in {p.parent}; export one (digitrec export) "
                "or pass a .onnx file with --model."
            )
        return p
    if not p.exists():
        raise DigitrecError(f"model file {p} does not exist; pass a run folder or a .onnx file.")
    return p


def _session_options() -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # All graph rewrites (constant folding, Conv+BN+ReLU fusion, layout transforms): they are applied once
    # at load and make every later call cheaper.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One intra-op thread: a 28x28 CNN is far too small to split across cores (the thread hand-off costs
    # more than the work), and the web server already runs requests in parallel on its thread pool, so
    # more threads per call would only oversubscribe the CPU. Set DIGITREC_ORT_THREADS for big batch jobs.
    opts.intra_op_num_threads = max(1, int(os.environ.get("DIGITREC_ORT_THREADS", "1")))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle worker threads must not spin and burn a core between requests.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only; ORT's warnings are not the user's business
    return opts


class Predictor:
    """A loaded model: one ONNX Runtime session, created once and safe to call from many threads."""

    def __init__(self, onnx_path: Path, *, verify: bool = True) -> None:
        import onnxruntime as ort

        self.path = onnx_path
        try:
            blob = onnx_path.read_bytes()
        except OSError as exc:
            raise DigitrecError(f"cannot read model file {onnx_path}: {exc.strerror or exc}.") from exc
        if not blob:
            raise DigitrecError(f"model file {onnx_path} is empty; re-export the model.")
        self.sha256 = hashlib.sha256(blob).hexdigest()
        card_path = onnx_path.parent / CARD_FILE
        self.card = ModelCard.read(card_path) if verify and card_path.is_file() else ModelCard()
        self.card.check_describes(onnx_path, self.sha256)
        # None without a calibrated card: raw softmax, and only blank images are "no digit".
        self.rules: Rules | None = Rules.from_calibration(self.card.calibration) if self.card.calibration else None
        # The card's "is this a digit?" network (gate.py), checked against its sha256; None without one.
        options = _session_options()  # one thread, no spinning: for the model and its gate alike
        self.gate: Gate | None = Gate.from_card(self.card, onnx_path.parent, options)
        try:
            # From bytes, so the file we hashed is exactly the file we run.
            self._session = ort.InferenceSession(blob, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
            raise DigitrecError(
                f"{onnx_path} is not a valid ONNX model ({type(exc).__name__}); re-export it."
            ) from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise DigitrecError(f"{onnx_path} must have one input and one output; got {len(inputs)} inputs.")
        shape = list(inputs[0].shape)
        if len(shape) != 4 or shape[1:] != [1, 28, 28] or inputs[0].type != "tensor(float)":
            raise DigitrecError(
                f"{onnx_path} expects {inputs[0].type} {shape}, not the digitrec contract {InputSpec().describe()}."
            )
        self._input_name = inputs[0].name
        self._output_name = outputs[0].name
        # Warm-up: ORT allocates its arenas on the first run; pay that here, not on the first request.
        probs = self._run(np.zeros((1, 1, 28, 28), np.float32))
        if probs.shape != (1, 10):
            raise DigitrecError(f"{onnx_path} outputs shape {probs.shape[1:]}, expected 10 logits per image.")

    # -- metadata -------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.card.name or self.path.parent.name or self.path.stem)

    @property
    def version(self) -> str:
        return str(self.card.version)

    @property
    def input_spec(self) -> dict[str, Any]:
        """The input contract as the model card states it (or the digitrec default)."""
        return self.card.input.to_dict()

    @property
    def test_accuracy(self) -> float | None:
        acc = self.card.test_accuracy
        return float(acc) if isinstance(acc, (int, float)) else None

    def __repr__(self) -> str:
        return f"Predictor(name={self.name!r}, version={self.version!r}, sha256={self.sha256[:12]!r})"

    # -- arrays (already MNIST-formatted) ---------------------------------------------------------------
    def _logits(self, x: np.ndarray) -> np.ndarray:
        """x: float32 (N, 1, 28, 28) in [0, 1] -> (N, 10) float32 raw logits (the rules need them)."""
        return self._session.run([self._output_name], {self._input_name: x})[0].astype(np.float32)

    def _softmax(self, logits: np.ndarray) -> np.ndarray:
        """(N, 10) raw logits -> calibrated probabilities (logits / T, T = 1 without calibration)."""
        return softmax(logits, self.rules.temperature if self.rules is not None else 1.0, np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """x: float32 (N, 1, 28, 28) in [0, 1] -> (N, 10) float32 calibrated softmax probabilities."""
        return self._softmax(self._logits(x))

    def predict_proba(self, images: Any) -> np.ndarray:
        """(N,28,28), (N,28,28,1), (N,1,28,28) or one (28,28); uint8 0..255 or float 0..1 -> (N, 10) float32.

        Arrays are taken as already MNIST-formatted (white on black, centred); use `predict_image` for
        photos and drawings. The probabilities are calibrated (temperature from the model card, if any); the
        "no digit" rules are not applied here: every row is answered.
        """
        x = as_model_input(images)
        if len(x) == 0:
            return np.zeros((0, 10), np.float32)
        return _chunked(self._run, x)

    def predict(self, images: Any) -> np.ndarray:
        """Like `predict_proba`, but the most likely digit per image: (N,) int64."""
        return self.predict_proba(images).argmax(axis=1).astype(np.int64)

    # -- real images (go through preprocessing) ---------------------------------------------------------
    def predict_image(self, source: Any) -> Prediction:
        """A path, bytes, PIL image or photo/drawing array -> Prediction (digit None when blank)."""
        return self.predict_images([source])[0]

    def predict_images(self, sources: Iterable[Any]) -> list[Prediction]:
        """Preprocess each source, then run all non-blank ones through the model in one batch."""
        from digitrec.inference.preprocess import to_mnist

        return self.predict_mnist([to_mnist(s) for s in sources])

    def predict_mnist(self, images: Sequence[np.ndarray | None]) -> list[Prediction]:
        """(28, 28) float images in [0, 1] already in MNIST form (None = blank) -> one Prediction each.

        With a calibrated card, an image the rules refuse gets digit None and its reason."""
        kept = [i for i, im in enumerate(images) if im is not None]
        out: list[Prediction] = [BLANK] * len(images)
        if not kept:
            return out
        batch = np.stack([as_model_input(images[i])[0, 0] for i in kept])
        x = batch[:, None]
        logits = _chunked(self._logits, x)
        probs = self._softmax(logits)
        reasons = verdicts(batch, logits, self.rules, self.gate)
        for row, i in enumerate(kept):
            p = probs[row]
            top = int(p.argmax())
            out[i] = Prediction(
                digit=top if reasons[row] is None else None,
                confidence=float(p[top]),
                probabilities=tuple(float(v) for v in p),
                input=batch[row],
                reason=reasons[row],
            )
        return out


def verdicts(images: np.ndarray, logits: np.ndarray, rules: Rules | None, gate: Gate | None) -> list[str | None]:
    """Why not to answer, per (N, 28, 28) MNIST-form image and its raw logits (None: answer): the card's rules
    (none without a calibrated card), 0s drawn as straight-sided outlines (`shapes`), then the gate's amendments.
    The predictor and benchmarks/calibration.py both judge through this."""
    if rules is None:
        reasons: list[str | None] = [None] * len(logits)
    else:
        reasons = refuse_outlines(images, rules.reasons(images, logits), logits.argmax(axis=1))
    if gate is None or not len(logits):
        return reasons
    x = np.asarray(images, np.float32).reshape(-1, 1, 28, 28)
    return gate.amend(reasons, _chunked(gate.scores, x))


def _chunked(run: Any, x: np.ndarray) -> np.ndarray:
    """run(x) for a (N, 1, 28, 28) batch with N > 0, _CHUNK rows at a time (see _CHUNK)."""
    return np.concatenate([run(x[i : i + _CHUNK]) for i in range(0, len(x), _CHUNK)])


def as_model_input(images: Any) -> np.ndarray:
    """Validate and convert an MNIST-formatted array to the model's float32 (N, 1, 28, 28) in [0, 1]."""
    expected = "expected (N,28,28), (N,28,28,1), (N,1,28,28) or (28,28) images as uint8 0..255 or float 0..1"
    try:
        x = np.asarray(images)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"images could not be read as an array ({exc}); {expected}.") from exc
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32, copy=False)
        if x.size and not np.isfinite(x).all():
            raise ValueError(f"images contain NaN or infinite values; {expected}.")
        if x.size and (x.min() < -1e-6 or x.max() > 1 + 1e-6):
            raise ValueError(
                f"float images must lie in [0, 1], got values in [{x.min():.3g}, {x.max():.3g}] "
                "(divide 0..255 data by 255, or pass uint8)."
            )
        x = np.clip(x, 0.0, 1.0)
    else:
        raise ValueError(f"unsupported dtype {x.dtype}; {expected}.")
    if x.shape == (28, 28):
        x = x[None, None]
    elif x.ndim == 3 and x.shape[1:] == (28, 28):
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1:] == (28, 28, 1):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim == 4 and x.shape[1:] == (1, 28, 28):
        pass
    else:
        raise ValueError(f"got shape {x.shape}; {expected}.")
    return np.ascontiguousarray(x, dtype=np.float32)


def load_model(path: str | os.PathLike[str] | None = None, *, verify: bool = True) -> Predictor:
    """Load a model once: None -> the bundled default ($DIGITREC_MODEL overrides it), a run folder, or a
    .onnx file. If a model card sits beside the file, its sha256 must match (`verify=False` skips that)."""
    return Predictor(resolve_model_path(path), verify=verify)
