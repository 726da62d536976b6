"""`digitrec doctor`: what is installed, what works, what is missing, and what to do about it."""

from __future__ import annotations

import importlib
import platform
import sys
from dataclasses import dataclass
from importlib import metadata

from digitrec import paths
from digitrec.cli.typer_app import app, console, fail

# (import name, distribution name, extra that needs it)
DEPENDENCIES = [
    ("numpy", "numpy", "base"), ("PIL", "pillow", "base"), ("typer", "typer", "base"), ("rich", "rich", "base"),
    ("torch", "torch", "train"), ("matplotlib", "matplotlib", "train"), ("onnx", "onnx", "train"),
    ("safetensors", "safetensors", "train"),
    ("onnxruntime", "onnxruntime", "serve"), ("fastapi", "fastapi", "serve"), ("uvicorn", "uvicorn", "serve"),
    ("multipart", "python-multipart", "serve"),
]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool  # a failed required check makes doctor exit non-zero


def installed_extras() -> set[str]:
    """An extra counts as installed when any of its distributions is: then all of it must work."""
    extras = {"base"}
    for _mod, dist, extra in DEPENDENCIES:
        try:
            metadata.version(dist)
            extras.add(extra)
        except metadata.PackageNotFoundError:
            pass
    return extras


def run_checks() -> list[Check]:
    checks = [Check("python", sys.version_info >= (3, 10), platform.python_version(), True)]
    extras = installed_extras()
    for mod, dist, extra in DEPENDENCIES:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            checks.append(Check(dist, False, f"not installed (pip install 'digitrec[{extra}]')",
                                extra in extras))
            continue
        try:
            importlib.import_module(mod)
            checks.append(Check(dist, True, version, extra in extras))
        except Exception as exc:  # a broken install shows up as any kind of import error
            checks.append(Check(dist, False, f"{version} installed but import fails: {exc}", True))
    checks.append(_cuda())
    checks.append(_data_cache())
    checks.append(_bundled_model())
    return checks


def _cuda() -> Check:
    try:
        from digitrec.training.loop import cuda_device_name
    except Exception:  # torch missing or broken: its own row above says which
        return Check("cuda", True, "n/a (torch not installed)", False)
    name = cuda_device_name()
    if name:
        return Check("cuda", True, f"available: {name}", False)
    return Check("cuda", True, "not available: training runs on the CPU", False)


def _data_cache() -> Check:
    from digitrec.training.data import FILES

    folder = paths.cache_dir() / "mnist"
    present = [name for name, _ in FILES.values() if (folder / name).is_file()]
    if len(present) == len(FILES):
        return Check("mnist cache", True, f"{folder} (4 files; verified on every load)", False)
    return Check("mnist cache", True, f"empty ({folder}); `digitrec data` fetches and verifies it", False)


def _bundled_model() -> Check:
    try:
        from digitrec.inference.predictor import load_model

        model = load_model()
        acc = model.card.test_accuracy
        detail = f"{model.name} {model.version}" + (f", test accuracy {acc * 100:.2f}%" if acc else "")
        return Check("bundled model", True, detail, True)
    except ImportError as exc:
        return Check("bundled model", True, f"not checked: {exc.name} missing (install digitrec[serve])", False)
    except Exception as exc:
        return Check("bundled model", False, str(exc), True)


@app.command(name="doctor")
def doctor_command() -> None:
    """Check the environment: Python, dependencies, CUDA, data cache, bundled model."""
    from rich.table import Table

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
