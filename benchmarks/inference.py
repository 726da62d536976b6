"""Inference speed, side by side in one run: single-image latency (p50/p99) and batch throughput on the 10k
test set, for the reference CNN in torch eager mode and every ONNX model given.

    python benchmarks/inference.py                                  # reference CNN vs the bundled model
    python benchmarks/inference.py --reference runs/reference-seed0 --model runs/best-ensemble5/members/seed-0 \
        --int8 runs/best-ensemble5/members/seed-0/int8 --student runs/student --ensemble runs/best-ensemble5 \
        --plot docs/img/latency.png

ONNX models run through the public API (`load_model(...).predict_proba`: input checks, calibrated softmax
included), one intra-op thread unless --threads says otherwise; torch gets the same number of threads. The
reference CNN runs in torch eager mode (what a Keras/PyTorch user would run) and, exported, in ONNX Runtime,
so "runtime" and "architecture" gains are told apart. Without --reference its weights are random: speed does
not depend on them, and its accuracy shows as "-". Latency: one image per call, `--calls` calls after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Row:
    name: str
    params: int | None
    accuracy: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    images_per_s: float = 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))


def time_model(name: str, params: int | None, predict, images: np.ndarray, labels: np.ndarray | None,
               calls: int, batch: int) -> Row:
    """predict: float32 (N, 1, 28, 28) -> (N, 10). Best of three passes for throughput."""
    one = images[:1]
    for _ in range(20):
        predict(one)
    lat = []
    for i in range(calls):
        x = images[i % len(images)][None]
        t = time.perf_counter()
        predict(x)
        lat.append((time.perf_counter() - t) * 1000)
    best, probs = float("inf"), None
    for _ in range(3):
        t = time.perf_counter()
        probs = np.concatenate([predict(images[i: i + batch]) for i in range(0, len(images), batch)])
        best = min(best, time.perf_counter() - t)
    acc = None if labels is None else float((probs.argmax(1) == labels).mean())
    return Row(name, params, acc, lat, len(images) / best)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def torch_reference(run: Path | None):
    import torch

    from digitrec.training.export import load_run_model
    from digitrec.training.models import ReferenceCNN, count_parameters

    model = load_run_model(run) if run else ReferenceCNN().eval()
    if not isinstance(model, ReferenceCNN):
        sys.exit(f"error: --reference {run} is not a reference-recipe run "
                 "(digitrec train --preset reference writes one)")

    @torch.inference_mode()
    def predict(x: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(x)).softmax(1).numpy()

    return model, predict, count_parameters(model)[0]


def onnx_model(path: Path):
    """(predict_proba, trainable parameters from the model card, if it has one)."""
    from digitrec.inference.predictor import load_model

    model = load_model(path)  # verified: the card (and its parameter count) describes this very file
    return model.predict_proba, model.card.get("parameters", {}).get("trainable")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, help="reference-recipe run folder (default: random weights)")
    ap.add_argument("--model", type=Path, help="another run folder or .onnx (the bundled model is always timed)")
    ap.add_argument("--int8", type=Path, help="int8 folder from `digitrec export RUN --int8`")
    ap.add_argument("--student", type=Path, help="distilled student run folder")
    ap.add_argument("--ensemble", type=Path, help="ensemble run folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=1000, help="single-image calls per model")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--plot", type=Path, help="write the latency distributions here (PNG)")
    args = ap.parse_args()

    os.environ["DIGITREC_ORT_THREADS"] = str(args.threads)
    import torch

    from digitrec.inference.predictor import resolve_model_path
    from digitrec.training import data as mnist
    from digitrec.training.export import export_onnx

    torch.set_num_threads(args.threads)
    ds = mnist.load_mnist()
    images, labels = (ds.test_images.astype(np.float32) / 255)[:, None], ds.test_labels
    ref_labels = labels if args.reference else None
    print(f"machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} CPU cores, "
          f"Python {platform.python_version()}, torch {torch.__version__}, {args.threads} thread(s)")
    print("command: python " + " ".join(sys.argv))

    ref_model, ref_predict, ref_params = torch_reference(args.reference)
    rows = [time_model("reference CNN, torch eager", ref_params, ref_predict, images, ref_labels, args.calls,
                       args.batch)]
    with tempfile.TemporaryDirectory() as tmp:
        ref_onnx = Path(tmp) / "reference.onnx"
        export_onnx(ref_model, ref_onnx)
        rows.append(time_model("reference CNN, ONNX fp32", ref_params, onnx_model(ref_onnx)[0], images,
                               ref_labels, args.calls, args.batch))
    given = [("model, ONNX fp32", args.model), ("model, ONNX int8", args.int8),
             ("distilled student, ONNX", args.student), ("ensemble, ONNX", args.ensemble)]
    # The bundled model (resolve_model_path(None)) is always timed; the others when given.
    for name, path in [("load_model() (bundled)", None), *((n, p) for n, p in given if p is not None)]:
        predict, params = onnx_model(resolve_model_path(path))
        rows.append(time_model(name, params, predict, images, labels, args.calls, args.batch))
    report(rows)
    if args.plot:
        plot(rows, args.plot)


def report(rows: list[Row]) -> None:
    eager, ref_onnx = rows[0].images_per_s, rows[1].images_per_s
    print(f"\n{'model':<28}{'params':>9}{'test acc':>10}{'p50 ms':>9}{'p99 ms':>9}{'images/s':>10}"
          f"{'x eager ref':>13}{'x ONNX ref':>12}")
    for r in rows:
        acc = f"{r.accuracy * 100:.2f}%" if r.accuracy is not None else "-"
        print(f"{r.name:<28}{r.params or 0:>9,}{acc:>10}{r.pct(50):>9.3f}{r.pct(99):>9.3f}{r.images_per_s:>10,.0f}"
              f"{r.images_per_s / eager:>13.2f}{r.images_per_s / ref_onnx:>12.2f}")
    by = {r.name: r for r in rows}
    bundled = by["load_model() (bundled)"]
    print(f"\nload_model().predict_proba throughput / reference CNN in torch eager = "
          f"{bundled.images_per_s / eager:.2f}  (goal >= 2)")
    model = by.get("model, ONNX fp32")
    if model and "model, ONNX int8" in by:
        print(f"int8 / fp32 throughput = {by['model, ONNX int8'].images_per_s / model.images_per_s:.2f}")
    if "distilled student, ONNX" in by:
        s = by["distilled student, ONNX"].images_per_s
        print(f"student / reference CNN throughput = {s / ref_onnx:.2f} in the same runtime (ONNX), "
              f"{s / eager:.2f} against torch eager  (goal >= 3)")


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        lat = np.sort(r.latencies_ms)
        ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=f"{r.name} (p50 {r.pct(50):.2f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("single-image latency, ms (log scale)")
    ax.set_ylabel("fraction of calls")
    ax.set_title("Inference latency, one image per call")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
