"""The `digitrec` command. Each handler parses, calls one library function, prints.

Heavy imports (torch, onnxruntime, fastapi) live inside the handlers so that `digitrec --help`
is instant and a serve-only install never touches the training half.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from digitrec.cli_app import OptPath, app, console, err_console, fail
from digitrec.errors import DigitrecError


def main() -> None:
    try:
        app()
    except DigitrecError as exc:  # raised outside a handler's own try (e.g. in a callback)
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


# ---------------------------------------------------------------- training half


@app.command()
def data(
    data_dir: OptPath = typer.Option(None, "--data-dir", help="Folder with the four MNIST files (raw or .gz)."),
) -> None:
    """Fetch MNIST, verify it against the canonical md5s, and cache it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from digitrec import data as mnist

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
                                            "for --teacher), vit (a small transformer) or seed (the reference)."),
    arch: str | None = typer.Option(None, help="Architecture: fast, seed or vit (default: the preset's)."),
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
    from digitrec.ensemble import train_ensemble
    from digitrec.train import resolve_config, run

    if device not in ("auto", "cpu", "cuda"):
        fail(f"--device must be auto, cpu or cuda, not {device!r}")
    if teacher is not None and not (teacher / "config.json").is_file():
        fail(f"--teacher {teacher} is not a run folder (no config.json); train the teacher first")
    try:
        cfg = resolve_config(preset, arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             label_smoothing=label_smoothing,
                             limit=limit, extra_data=str(extra_data) if extra_data else None,
                             teacher=str(teacher) if teacher else None, negatives=negatives or None,
                             negatives_weight=negatives_weight)
        out = out or Path("runs") / (f"{preset}-ensemble{ensemble}-seed{seed}" if ensemble else f"{preset}-seed{seed}")
        options = dict(device=device, resume=resume, data_dir=data_dir, reporter=EpochReporter(quiet))
        card = train_ensemble(cfg, out, ensemble, **options) if ensemble else run(cfg, out, **options)
    except DigitrecError as exc:
        fail(str(exc))
    if card is not None and not quiet:
        console.print(f"test accuracy {card['test_accuracy'] * 100:.2f}% ({card['test_errors']} errors), "
                      f"{card['training_seconds']:.0f}s of training; run folder: {out}",
                      highlight=False, soft_wrap=True)
        if "member_test_accuracy" in card:
            _print_members(card)


def _print_members(card: dict) -> None:
    m = card["member_test_accuracy"]
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
    from digitrec.ensemble import combine

    try:
        card = combine(runs, out, data_dir=data_dir)
    except DigitrecError as exc:
        fail(str(exc))
    console.print(f"test accuracy {card['test_accuracy'] * 100:.2f}% ({card['test_errors']} errors), validation "
                  f"{card['val_accuracy'] * 100:.2f}%; ensemble folder: {out}", highlight=False, soft_wrap=True)
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
    from digitrec.export import export_run

    try:
        if not int8 or not (run / "model.onnx").is_file():
            path, diff = export_run(run, None if int8 else out)
            console.print(f"wrote {path} (max |onnxruntime - torch| = {diff:.1e})")
        if int8:
            from digitrec.quantize import quantize_run

            card = quantize_run(run, out, data_dir=data_dir)
    except DigitrecError as exc:
        fail(str(exc))
    if int8:
        q = card["quantization"]
        console.print(f"int8: test {card['test_accuracy'] * 100:.2f}% (fp32 {q['fp32_test_accuracy'] * 100:.2f}%, "
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

    from digitrec.evaluate import evaluate_model, format_table

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
    from digitrec.kaggle import write_submission

    try:
        n = write_submission(test, out, model)
    except DigitrecError as exc:
        fail(str(exc))
    console.print(f"wrote {n} predictions to {out}")


@app.command()
def doctor() -> None:
    """Check the environment: Python, dependencies, CUDA, data cache, bundled model."""
    from rich.table import Table

    from digitrec.doctor import run_checks

    checks = run_checks()
    table = Table(show_header=True, header_style="bold")
    for col in ("check", "status", "detail"):
        table.add_column(col)
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]missing[/]")
        table.add_row(c.name, status, c.detail)
    console.print(table)
    broken = [c.name for c in checks if not c.ok and c.required]
    if broken:
        fail("broken: " + ", ".join(broken))


@app.command()
def predict(
    files: list[Path] = typer.Argument(..., help="Images (PNG, JPEG, WebP, BMP, GIF), one digit each."),
    model: OptPath = typer.Option(None, "--model", "-m", help="Run folder or .onnx (default: bundled)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per file instead of text."),
    number: bool = typer.Option(False, "--number", help="Each image holds a number of several digits."),
) -> None:
    """Recognise the digit in each image: `file: 7 (99.8%)`, or `file: no digit` for a blank one."""

    from digitrec.predictor import load_model

    try:
        predictor = load_model(model)
    except DigitrecError as exc:
        fail(str(exc))
    line = _number_line if number else _digit_line
    _for_each_file(files, lambda path: line(predictor, path, as_json))


def _for_each_file(files: list[Path], line_for) -> None:
    """One output line per readable file; for the others a clear error on stderr, then a non-zero exit."""
    failed = 0
    for path in files:
        try:
            text = line_for(path)
        except DigitrecError as exc:  # unreadable, empty, truncated or too large: say so, go on
            err_console.print(f"{path}: error: {exc}", highlight=False, soft_wrap=True, markup=False)
            failed += 1
            continue
        typer.echo(text)
    if failed:
        fail(f"{failed} of {len(files)} file(s) could not be read.")


def _digit_line(predictor, path: Path, as_json: bool) -> str:
    """`file: 7 (99.8%)`, `file: no digit (reason)`, or the same as JSON."""
    import json

    p = predictor.predict_image(path)
    if as_json:
        return json.dumps({"file": str(path), "digit": p.digit, "confidence": round(p.confidence, 6),
                           "probabilities": [round(v, 6) for v in p.probabilities], "reason": p.reason})
    if p.digit is None:
        return f"{path}: no digit" + ("" if p.is_blank else f" ({p.reason.replace('_', ' ')})")
    return f"{path}: {p.digit} ({p.confidence:.1%})"


def _number_line(predictor, path: Path, as_json: bool) -> str:
    """`predict --number`: `file: 2024 (97.1%)`, or JSON with the digits' boxes."""
    import json

    from digitrec.segment import read_number

    result = read_number(predictor, path)
    if as_json:
        return json.dumps({"file": str(path), **result.to_dict()})
    if not result.number:
        return f"{path}: no digits"
    return f"{path}: {result.number} ({result.confidence:.1%})"


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, envvar="PORT", help="TCP port ($PORT, as Cloud Run and Heroku set it)."),
    model: OptPath = typer.Option(None, "--model", "-m", help="Run folder or .onnx (default: bundled)."),
    workers: int = typer.Option(1, min=1, envvar="WEB_CONCURRENCY",
                                help="Worker processes (each loads its own copy of the model)."),
    db: str | None = typer.Option(None, "--db", envvar="DIGITREC_DB",
                                  help="Feedback store: sqlite:///file.db, postgresql://..., or off "
                                       "(default: SQLite under $DIGITREC_DATA_DIR or ~/.local/share/digitrec)."),
    rate_limit: str | None = typer.Option(None, "--rate-limit", envvar="DIGITREC_RATE_LIMIT",
                                          help="Per-client limit, e.g. 20/second, or off (default: off)."),
    cors_origin: list[str] = typer.Option([], "--cors-origin", help="Allow this origin (repeatable; off)."),
    candidate: OptPath = typer.Option(None, "--candidate", help="A/B: a second model for a share of clients."),
    candidate_share: float = typer.Option(0.1, "--candidate-share", min=0.0, max=1.0,
                                          help="Share of clients (by a stable hash) the candidate answers."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="JSON access log on stderr."),
    rate_limit_storage: str | None = typer.Option(
        None, "--rate-limit-storage", envvar="DIGITREC_RATE_LIMIT_STORAGE",
        help="Where the rate limit counts: redis://HOST:PORT shares it across workers and replicas "
             "(default: memory, per worker)."),
    forwarded_allow_ips: str | None = typer.Option(
        None, "--forwarded-allow-ips", envvar="FORWARDED_ALLOW_IPS",
        help="Proxies whose X-Forwarded-For is believed, comma-separated IPs/networks (default 127.0.0.1)."),
    retain: str | None = typer.Option(None, "--retain", envvar="DIGITREC_RETAIN",
                                      help="Keep stored predictions this long (30d, 12h) or this many (100000); "
                                           "pruned in the background (default: forever)."),
    max_heavy: int = typer.Option(8, "--max-heavy", min=1, envvar="DIGITREC_MAX_HEAVY",
                                  help="Heavy requests (predict, batch, number, explain) in flight per worker; "
                                       "beyond, 503 + Retry-After."),
    heavy_wait: float = typer.Option(1.0, "--heavy-wait", min=0.0, envvar="DIGITREC_HEAVY_WAIT",
                                     help="Seconds a heavy request beyond --max-heavy waits for a slot."),
    header_timeout: float = typer.Option(10.0, "--header-timeout", min=0.1, envvar="DIGITREC_HEADER_TIMEOUT",
                                         help="Seconds a client has to send a request's headers."),
    body_timeout: float = typer.Option(30.0, "--body-timeout", min=0.1, envvar="DIGITREC_BODY_TIMEOUT",
                                       help="Seconds a client has to send a request's body (then 408)."),
    http: str = typer.Option("auto", "--http", envvar="DIGITREC_HTTP",
                             help="HTTP parser: auto (httptools when installed), h11 or httptools."),
) -> None:
    """Serve the drawing page and the REST API (OpenAPI docs at /docs, metrics at /metrics)."""
    try:
        from digitrec.web.server import serve as run_server
        from digitrec.web.settings import ServeSettings
    except ImportError as exc:
        fail(f"serving needs the web extras ({exc.name} is missing): pip install 'digitrec[serve]'.")
    try:
        # Every flag, whether given or read from its DIGITREC_* variable by typer; the rest from the environment.
        settings = ServeSettings.from_env(
            model=str(model) if model else None, db=db, rate_limit=rate_limit, cors_origins=tuple(cors_origin),
            candidate=str(candidate) if candidate else None, candidate_share=candidate_share, access_log=access_log,
            rate_limit_storage=rate_limit_storage, forwarded_allow_ips=forwarded_allow_ips, retain=retain,
            max_heavy=max_heavy, heavy_wait=heavy_wait, header_timeout=header_timeout, body_timeout=body_timeout,
            http=http)
        run_server(host=host, port=port, workers=workers, settings=settings)
    except DigitrecError as exc:
        fail(str(exc))


# The calibration, explanation, webcam and feedback commands live in their own module.
from digitrec import cli_insight  # noqa: E402,F401 - registers its commands on `app`
