"""The training half's commands: data, train, ensemble, export (+ int8), evaluate and the Kaggle submission.

torch and the training modules are imported inside the handlers, so `digitrec --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from digitrec.cli.typer_app import OptPath, app, console, err_console, fail
from digitrec.errors import DigitrecError


@app.command()
def data(
    data_dir: OptPath = typer.Option(None, "--data-dir", help="Folder with the four MNIST files (raw or .gz)."),
) -> None:
    """Fetch MNIST, verify it against the canonical md5s, and cache it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from digitrec.training import data as mnist

    # The work is a handful of stages of unknown length (a download, a conversion): a pulsing bar that names
    # the current stage says more than a percentage would.
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("MNIST", total=None)
        try:
            folder = mnist.ensure_mnist(data_dir, progress=lambda m: bar.update(task, description=m))
        except DigitrecError as exc:
            fail(str(exc))
    console.print(f"MNIST verified (canonical md5s) and cached in {folder}")


class EpochReporter:
    """A Rich progress bar with live loss/accuracy on a terminal; one line per epoch otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live = sys.stdout.isatty() and not quiet
        self.progress = None

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn(f"epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=console,
                                 transient=True)
        self.progress.start()
        self.task = self.progress.add_task("train", total=steps, stats="")

    def batch(self, step: int, steps: int, loss: float, acc: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, stats=f"loss {loss:.4f} acc {acc * 100:.2f}%")

    def epoch_end(self, row: dict, stopped: bool) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.quiet:
            return
        console.print(
            f"epoch {row['epoch']:>2}  train loss {row['train_loss']:.4f} acc {row['train_acc'] * 100:.2f}%  "
            f"val loss {row['val_loss']:.4f} acc {row['val_acc'] * 100:.2f}%  lr {row['lr']:.2e}  "
            f"{row['seconds']:.1f}s" + ("  (early stop)" if stopped else ""), highlight=False, soft_wrap=True)


@app.command()
def train(
    preset: str = typer.Option("fast", help="Recipe: fast (ours, the default), best (accuracy), student (small, "
                                            "for --teacher), vit (a small transformer) or reference (the reference "
                                            "project's; `seed`, its old name, is deprecated)."),
    arch: str | None = typer.Option(None, help="Architecture: fast, reference or vit (default: the preset's)."),
    width: int | None = typer.Option(None, min=1, help="Channels of the fast CNN's first stage (then 2x, 4x; "
                                                       "default: the preset's)."),
    crop: int | None = typer.Option(None, min=8, max=28, help="The fast CNN sees the central CROP x CROP pixels "
                                                             "(28: all; default: the preset's)."),
    epochs: int | None = typer.Option(None, min=1, help="Number of epochs (default: the preset's)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Batch size."),
    lr: float | None = typer.Option(None, min=0.0, help="Peak learning rate."),
    label_smoothing: float | None = typer.Option(None, "--label-smoothing", min=0.0, max=0.5,
                                                 help="Label smoothing (default: the preset's)."),
    seed: int = typer.Option(0, help="Random seed; runs are deterministic on CPU for a given seed."),
    limit: int | None = typer.Option(None, min=1, help="Use only the first N training images (smoke tests)."),
    out: OptPath = typer.Option(None, help="Run folder (default runs/<preset>-seed<seed>)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    quiet: bool = typer.Option(False, help="No progress output."),
    data_dir: OptPath = typer.Option(None, "--data-dir", help="Folder with the four MNIST files."),
    extra_data: OptPath = typer.Option(None, "--extra-data",
                                       help="Also train on the IDX files `digitrec feedback export` wrote here."),
    ensemble: int | None = typer.Option(None, "--ensemble", min=2, max=32,
                                        help="Train K members (seeds seed..seed+K-1) and export their average."),
    teacher: OptPath = typer.Option(None, "--teacher", help="Distil from this run folder's (or ensemble's) "
                                                            "soft labels."),
    negatives: bool = typer.Option(False, "--negatives", help="Also train on rendered letters, symbols, "
                                                              "scribbles and shapes pushed towards a uniform "
                                                              "softmax, so that \"no digit\" refuses them."),
    negatives_weight: float | None = typer.Option(None, "--negatives-weight", min=0.0,
                                                  help="Weight of the negatives' loss (default 0.5)."),
) -> None:
    """Train a model and write a complete run folder (ONNX, weights, metrics, plots, model card)."""
    from digitrec.training.ensemble import train_ensemble
    from digitrec.training.loop import run
    from digitrec.training.models import RENAMED
    from digitrec.training.recipes import resolve_config

    for flag, name in (("--preset", preset), ("--arch", arch)):
        if name in RENAMED:
            err_console.print(f"warning: {flag} {name} is deprecated, use {flag} {RENAMED[name]}: the old name goes "
                              "away in the next release", highlight=False, soft_wrap=True)
    preset, arch = RENAMED.get(preset, preset), RENAMED.get(arch, arch) if arch else None
    if device not in ("auto", "cpu", "cuda"):
        fail(f"--device must be auto, cpu or cuda, not {device!r}")
    if teacher is not None and not (teacher / "config.json").is_file():
        fail(f"--teacher {teacher} is not a run folder (no config.json); train the teacher first")
    try:
        cfg = resolve_config(preset, arch=arch, width=width, crop=crop, epochs=epochs, batch_size=batch_size, lr=lr,
                             seed=seed, label_smoothing=label_smoothing, limit=limit,
                             extra_data=str(extra_data) if extra_data else None,
                             teacher=str(teacher) if teacher else None, negatives=negatives or None,
                             negatives_weight=negatives_weight)
        out = out or Path("runs") / (f"{preset}-ensemble{ensemble}-seed{seed}" if ensemble else f"{preset}-seed{seed}")
        options = dict(device=device, resume=resume, data_dir=data_dir, reporter=EpochReporter(quiet))
        card = train_ensemble(cfg, out, ensemble, **options) if ensemble else run(cfg, out, **options)
    except DigitrecError as exc:
        fail(str(exc))
    if card is not None and not quiet:
        console.print(f"test accuracy {card.test_accuracy * 100:.2f}% ({card.test_errors} errors), "
                      f"{card.training_seconds:.0f}s of training; run folder: {out}",
                      highlight=False, soft_wrap=True)
        if card.member_test_accuracy:
            _print_members(card)


def _print_members(card) -> None:
    m = card.member_test_accuracy
    console.print(f"members: {m['mean'] * 100:.2f}% ± {m['std'] * 100:.2f} (mean ± std of {m['n']}), "
                  f"min {m['min'] * 100:.2f}%, max {m['max'] * 100:.2f}%", highlight=False)


@app.command()
def ensemble(
    runs: list[Path] = typer.Argument(..., help="Finished run folders of any recipes; an ensemble folder gives "
                                                "its members."),
    out: Path = typer.Option(..., help="New folder for the ensemble (the members are copied into it)."),
    data_dir: OptPath = typer.Option(None, "--data-dir", help="Folder with the four MNIST files."),
) -> None:
    """Average finished runs of different recipes into one ONNX: members that differ more err less together."""
    from digitrec.training.ensemble import combine

    try:
        card = combine(runs, out, data_dir=data_dir)
    except DigitrecError as exc:
        fail(str(exc))
    console.print(f"test accuracy {card.test_accuracy * 100:.2f}% ({card.test_errors} errors), validation "
                  f"{card.val_accuracy * 100:.2f}%; ensemble folder: {out}", highlight=False, soft_wrap=True)
    _print_members(card)


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run folder with config.json and model.safetensors."),
    out: OptPath = typer.Option(None, help="Where to write the ONNX file (default RUN/model.onnx; with --int8 "
                                           "the folder, default RUN/int8)."),
    int8: bool = typer.Option(False, "--int8", help="Also write a static int8 model, calibrated on training "
                                                    "images, and compare it with fp32."),
    data_dir: OptPath = typer.Option(None, "--data-dir", help="Folder with the four MNIST files."),
) -> None:
    """Export a run's weights to ONNX and check ONNX Runtime against torch; --int8 quantises it too."""
    from digitrec.training.export import export_run

    try:
        if not int8 or not (run / "model.onnx").is_file():
            path, diff = export_run(run, None if int8 else out)
            console.print(f"wrote {path} (max |onnxruntime - torch| = {diff:.1e})")
        if int8:
            from digitrec.training.quantize import quantize_run

            card = quantize_run(run, out, data_dir=data_dir)
    except DigitrecError as exc:
        fail(str(exc))
    if int8:
        q = card.quantization
        console.print(f"int8: test {card.test_accuracy * 100:.2f}% (fp32 {q['fp32_test_accuracy'] * 100:.2f}%, "
                      f"{q['accuracy_change_points']:+.2f} points), {q['speedup']:.2f}x the fp32 throughput "
                      f"({q['int8_images_per_second']:,} vs {q['fp32_images_per_second']:,} images/s); "
                      f"folder: {out or run / 'int8'}", highlight=False, soft_wrap=True)


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="A run folder or an .onnx file."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    data_dir: OptPath = typer.Option(None, "--data-dir", help="Folder with the four MNIST files."),
) -> None:
    """Test accuracy and the per-class table on the 10k test set; regenerates the report plots."""
    import json

    from digitrec.training.evaluate import evaluate_model, format_table

    try:
        metrics = evaluate_model(model, data_dir=data_dir)
    except DigitrecError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "misclassified"}))
    else:
        console.print(format_table(metrics), highlight=False)


@app.command()
def submit(
    test: Path = typer.Option(..., "--test", help="Kaggle test.csv (header pixel0..pixel783)."),
    out: Path = typer.Option(Path("submission.csv"), help="Where to write ImageId,Label."),
    model: OptPath = typer.Option(None, help="Run folder or .onnx (default: the bundled model)."),
) -> None:
    """Write a Kaggle Digit Recognizer submission."""
    from digitrec.training.kaggle import write_submission

    try:
        n = write_submission(test, out, model)
    except DigitrecError as exc:
        fail(str(exc))
    console.print(f"wrote {n} predictions to {out}")
