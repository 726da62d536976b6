"""Ensembles: K members of one recipe, seeds s..s+K-1, exported as one ONNX graph that averages their probabilities.

The graph returns log(mean probability) as its "logits": softmax gives the mean back exactly, so the ONNX
contract and everything downstream of it (calibration, the predictor, serving) take an ensemble unchanged.
Each member is a complete run folder under `<out>/members/seed-<s>`; a member already finished with the same
recipe is reused, so an interrupted ensemble picks up where it stopped.

`combine` builds the same kind of folder from finished runs of different recipes: members that differ in more
than their seed make different mistakes, which is what averaging needs.
"""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

from digitrec.card import CARD_FILE, ModelCard
from digitrec.errors import DigitrecError
from digitrec.training.models import Ensemble


def member_dir(out: Path, seed: int) -> Path:
    return out / "members" / f"seed-{seed}"


def finished_card(run: Path, cfg) -> ModelCard | None:
    """The model card of a member that finished with exactly this recipe, else None."""
    card_path, config_path = run / CARD_FILE, run / "config.json"
    if not (card_path.is_file() and config_path.is_file()):
        return None
    from digitrec.training.recipes import same_recipe

    if not same_recipe(json.loads(config_path.read_text())["recipe"], cfg):
        return None
    return ModelCard.read(card_path)


def train_member(cfg, path: Path, *, device: str = "auto", resume: bool = False, data_dir: Path | None = None,
                 reporter=None) -> ModelCard | None:
    """The card of the member at `path`: reused if it finished with this recipe, else trained (from its last
    checkpoint when `resume` and there is one)."""
    from digitrec.training.loop import run

    card = finished_card(path, cfg)
    if card is None:
        card = run(cfg, path, device=device, resume=resume and (path / "checkpoint.pt").is_file(),
                   data_dir=data_dir, reporter=reporter)
    return card


def train_ensemble(cfg, out: Path, k: int, *, device: str = "auto", resume: bool = False,
                   data_dir: Path | None = None, reporter=None) -> ModelCard | None:
    """Train (or reuse) K members, then write the ensemble's run folder; returns its model card."""
    runs, cards = [], []
    for i in range(k):
        member_cfg = replace(cfg, seed=cfg.seed + i)
        path = member_dir(out, member_cfg.seed)
        runs.append(path)
        cards.append(train_member(member_cfg, path, device=device, resume=resume, data_dir=data_dir,
                                  reporter=reporter))
    if any(card is None for card in cards):  # a torchrun rank other than 0: rank 0 writes the folder
        return None
    return write_ensemble_folder(out, cfg.to_dict(), runs, cards, device=device, data_dir=data_dir)


def expand_members(run: Path) -> list[Path]:
    """A run folder is one member; an ensemble folder gives its members."""
    config_path = run / "config.json"
    if not config_path.is_file():
        raise DigitrecError(f"{run} is not a run folder: config.json is missing")
    model = json.loads(config_path.read_text())["model"]
    if model["arch"] == "ensemble":  # each member is checked like a run given directly
        return [m for name in model["members"] for m in expand_members(run / name)]
    if not (run / CARD_FILE).is_file() or not (run / "model.safetensors").is_file():
        raise DigitrecError(f"{run} is not a finished run: model_card.json or model.safetensors is missing")
    return [run]


def member_name(run: Path) -> str:
    """runs/best/members/seed-0 -> best-seed-0; runs/student -> student."""
    parts = run.resolve().parts
    return f"{parts[-3]}-{parts[-1]}" if len(parts) >= 3 and parts[-2] == "members" else parts[-1]


def combine(runs: list[Path], out: Path, *, device: str = "cpu", data_dir: Path | None = None) -> ModelCard:
    """One ensemble from finished runs of any recipes, copied into `out/members` so that the folder stands alone."""
    members = [m for run in runs for m in expand_members(run)]
    names = [member_name(m) for m in members]
    if len(members) < 2:
        raise DigitrecError("an ensemble needs at least two members")
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DigitrecError(f"members given twice (or with the same name): {', '.join(twice)}")
    if out.exists() and any(out.iterdir()):
        raise DigitrecError(f"{out} already exists and is not empty; choose a new --out folder")
    if any(out.resolve().is_relative_to(m.resolve()) for m in members):
        raise DigitrecError(f"{out} is inside a member's run folder; choose an --out folder outside the runs")
    copies = [out / "members" / name for name in names]
    for member, copy in zip(members, copies, strict=True):
        # The checkpoint only serves --resume of a finished run: the member is complete without it.
        shutil.copytree(member, copy, ignore=shutil.ignore_patterns("checkpoint.pt", "int8"))
    cards = [ModelCard.read(c / CARD_FILE) for c in copies]
    recipe = {"arch": "ensemble", "members": {n: c.recipe for n, c in zip(names, cards, strict=True)}}
    return write_ensemble_folder(out, recipe, copies, cards, device=device, data_dir=data_dir)


def member_summary(runs: list[Path], cards: list[ModelCard], out: Path) -> tuple[list[dict], dict]:
    """Per-member figures and the mean/std/min/max of their test accuracy (sample std: ddof 1)."""
    members = [{"run": str(r.relative_to(out)), "seed": c.recipe["seed"], "test_accuracy": c.test_accuracy,
                "val_accuracy": c.val_accuracy, "training_seconds": c.training_seconds}
               for r, c in zip(runs, cards, strict=True)]
    accs = [m["test_accuracy"] for m in members]
    stats = {"mean": round(statistics.fmean(accs), 6), "std": round(statistics.stdev(accs), 6) if len(accs) > 1
             else 0.0, "min": min(accs), "max": max(accs), "n": len(accs)}
    return members, stats


def write_ensemble_folder(out: Path, recipe: dict, runs: list[Path], cards: list[ModelCard], *, device: str,
                          data_dir: Path | None = None) -> ModelCard:
    from digitrec.fileio import write_json
    from digitrec.training import data as mnist
    from digitrec.training.calibrate import calibrate_model
    from digitrec.training.evaluate import evaluate_model, val_accuracy
    from digitrec.training.export import export_onnx, load_run_model
    from digitrec.training.runs import build_model_card, command_line, git_commit, library_versions

    (out / CARD_FILE).unlink(missing_ok=True)
    model = Ensemble([load_run_model(r) for r in runs])
    parity = export_onnx(model, out / "model.onnx")
    members, stats = member_summary(runs, cards, out)
    config = {
        "model": {"arch": "ensemble", "members": [m["run"] for m in members]},
        "recipe": recipe,
        "seed": recipe.get("seed"),
        "parameters": {key: sum(c.parameters[key] for c in cards) for key in ("trainable", "total")},
        "data": {"checksums_md5": mnist.checksums()},
        "device": device,
        "command": command_line(),
        "git_commit": git_commit(),
        "library_versions": library_versions(),
        "training_seconds": round(sum(c.training_seconds for c in cards), 1),
        "epochs_run": sum(c.epochs_run for c in cards),
        "best_epoch": None,
    }
    write_json(out / "config.json", config)
    metrics = evaluate_model(out, data_dir=data_dir)
    smoke = any(c.recipe.get("limit") for c in cards)  # tiny test runs: calibrate on fewer images
    calibration = calibrate_model(out / "model.onnx", data_dir=data_dir, synthetic=100 if smoke else 500)
    card = replace(build_model_card(out, config, metrics, parity), name=f"digitrec-ensemble{len(runs)}",
                   val_accuracy=val_accuracy(out / "model.onnx", data_dir), members=members,
                   member_test_accuracy=stats, calibration={**calibration, "command": config["command"]})
    card.write(out / CARD_FILE)
    return card
