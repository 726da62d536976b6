"""Training: the loop, checkpoint/resume, and DistributedDataParallel under torchrun (the presets: recipes.py).

The whole data set lives in one tensor (60k images of 28x28 are 188 MB as float32); batches are slices
of a per-epoch permutation, augmented on the fly in one batched call. Every source of randomness in an
epoch is derived from (seed, epoch), and the checkpoint holds everything else, so a run killed at any
point and resumed ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from digitrec.card import ModelCard
from digitrec.errors import DigitrecError
from digitrec.fileio import write_atomic
from digitrec.training import data as mnist
from digitrec.training import negatives
from digitrec.training.augment import random_affine
from digitrec.training.models import build_model
from digitrec.training.recipes import TrainConfig, same_recipe

NEGATIVE_POOL = 20_000
LOG_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


# ---------------------------------------------------------------- distributed helpers


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world=dist.get_world_size())


def all_reduce_sum(values: list[float], d: Dist) -> list[float]:
    if d.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------- the pieces of an epoch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DigitrecError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def cuda_device_name() -> str | None:
    """The GPU training would use (`digitrec doctor` reports it), or None when torch sees none."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return torch.from_numpy(np.array(images, dtype=np.uint8)).float().div_(255).unsqueeze(1)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        # No weight decay on batch-norm and bias parameters: it only fights the normalisation.
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.25,
            anneal_strategy="linear", div_factor=10, final_div_factor=100,
        )
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


@torch.no_grad()
def evaluate_logits(model: nn.Module, images: torch.Tensor, device: torch.device, batch: int = 1000) -> torch.Tensor:
    model.eval()
    out = [model(images[i : i + batch].to(device, memory_format=torch.channels_last)).float().cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out) if out else torch.empty(0, 10)


@torch.no_grad()
def teacher_targets(run: Path, x: torch.Tensor, cfg: TrainConfig, device: torch.device) -> torch.Tensor:
    """The teacher's probabilities (at the distillation temperature) on each training image, computed once
    on the un-augmented image: an augmented view keeps its source's soft label, which costs one teacher pass
    per run instead of one per step."""
    from digitrec.training.export import load_run_model

    teacher = load_run_model(run).to(device, memory_format=torch.channels_last)
    return (evaluate_logits(teacher, x, device) / cfg.distill_temperature).softmax(1)


def loss_fn(logits: torch.Tensor, yb: torch.Tensor, soft: torch.Tensor | None, cfg: TrainConfig) -> torch.Tensor:
    loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
    if soft is None:
        return loss
    t = cfg.distill_temperature  # t^2 keeps the soft term's gradients on the scale of the hard one
    kd = F.kl_div(F.log_softmax(logits / t, 1), soft, reduction="batchmean") * t * t
    return (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * kd


def train_one_epoch(model, opt, sched, x, y, cfg: TrainConfig, epoch: int, device, d: Dist, on_batch=None,
                    soft: torch.Tensor | None = None, neg: negatives.Exposure | None = None):
    """One pass over this rank's shard of a permutation fixed by (seed, epoch); `neg`: outlier exposure."""
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    neg_gen = torch.Generator().manual_seed(cfg.seed * 7_919 + epoch * 131 + d.rank)  # digits' stream unchanged
    torch.manual_seed(cfg.seed * 1_000_003 + epoch * 31 + d.rank)  # dropout masks
    perm = torch.randperm(len(x), generator=gen)
    per_rank = cfg.batch_size // d.world
    steps = len(x) // cfg.batch_size if len(x) >= cfg.batch_size else 1
    # Running sums stay on the device: reading them every step would make a GPU wait for each batch.
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for step in range(steps):
        idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size][d.rank * per_rank : (d.rank + 1) * per_rank]
        # x may already live on the device (CUDA): the affine parameters still come from `gen` on the CPU,
        # so the augmented batch is the same whichever device warps it.
        xb = x[idx.to(x.device)] if neg is None else neg.digits(x, idx, neg_gen)
        xb = random_affine(xb, cfg.augment, generator=gen).to(device, memory_format=torch.channels_last)
        yb = y[idx.to(y.device)].to(device)
        if neg is None:
            logits = model(xb)
        else:  # one forward for both: batch norm sees digits and negatives together, as in Hendrycks et al.
            nb = neg.draw(max(len(idx) // 2, 1), cfg.augment, neg_gen)
            logits, neg_logits = model(torch.cat([xb, nb.to(device, memory_format=torch.channels_last)])).split(
                [len(idx), len(nb)])
        loss = loss_fn(logits, yb, None if soft is None else soft[idx].to(device), cfg)
        if neg is not None:
            loss = loss + cfg.negatives_weight * negatives.uniform_loss(neg_logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        lr = opt.param_groups[0]["lr"]  # the rate this step really used (a scheduler step follows)
        opt.step()
        if cfg.schedule == "onecycle":
            sched.step()
        loss_sum += loss.detach().double() * len(idx)
        correct += (logits.argmax(1) == yb).sum()
        seen += len(idx)
        if on_batch:
            on_batch(step + 1, steps, loss_sum.item() / seen, correct.item() / seen)
    loss_sum, correct, seen = all_reduce_sum([loss_sum.item(), float(correct.item()), float(seen)], d)
    return loss_sum / seen, correct / seen, lr


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, state: dict) -> None:
    """Written atomically: a SIGKILL mid-write leaves the previous checkpoint intact."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    # Our own file, but weights_only keeps loading free of arbitrary code all the same.
    return torch.load(path, map_location="cpu", weights_only=True)


def write_log(path: Path, rows: list[dict]) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue().encode())


# ---------------------------------------------------------------- the run


@dataclass
class RunResult:
    out: Path
    model: nn.Module
    history: list[dict]
    best_epoch: int
    train_images: int  # what the model was fitted on: the split (or --limit) plus any --extra-data


def train(
    cfg: TrainConfig,
    out: Path,
    *,
    device: str = "auto",
    resume: bool = False,
    data_dir: Path | None = None,
    reporter=None,
) -> RunResult:
    """Train into the run folder `out`; return the final (best, for early stopping) model.

    `reporter` gets epoch_start/batch/epoch_end callbacks (the CLI draws a progress bar from them).
    """
    dev = resolve_device(device)
    d = init_distributed(dev)
    if dev.type == "cuda" and d.world > 1:  # one GPU per process, as torchrun numbers them
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", d.rank)))
        torch.cuda.set_device(dev)
    if cfg.batch_size % d.world:
        raise DigitrecError(f"--batch-size {cfg.batch_size} must be divisible by the {d.world} processes")
    torch.manual_seed(cfg.seed)
    ds = mnist.load_mnist(data_dir)
    split = mnist.stratified_split(ds.train_labels)
    train_idx = split.train[: cfg.limit] if cfg.limit else split.train
    x_train, y_train = to_tensor(ds.train_images[train_idx]), torch.from_numpy(ds.train_labels[train_idx])
    if cfg.extra_data:  # appended to the training tensor only: validation and test stay pure MNIST
        from digitrec.feedback.store import read_idx_pair

        extra_x, extra_y = read_idx_pair(Path(cfg.extra_data))
        x_train = torch.cat([x_train, to_tensor(extra_x)])
        y_train = torch.cat([y_train, torch.from_numpy(extra_y).to(y_train.dtype)])
    val_idx = split.val[: max(cfg.limit // 4, 500)] if cfg.limit else split.val
    x_val, y_val = to_tensor(ds.train_images[val_idx]), torch.from_numpy(ds.train_labels[val_idx])

    soft = teacher_targets(Path(cfg.teacher), x_train, cfg, dev) if cfg.teacher else None
    # Outlier exposure: 20k negatives of a seed of their own (fewer for a smoke run's --limit), and the digits'
    # image-path views.
    neg = negatives.Exposure(negatives.pool(min(NEGATIVE_POOL, max(cfg.limit or NEGATIVE_POOL, 500)), cfg.seed + 1),
                             negatives.image_path_views(x_train)) if cfg.negatives else None
    if dev.type == "cuda":  # 60k digits are 188 MB: keep them on the GPU and augment there
        x_train, y_train = x_train.to(dev), y_train.to(dev)
        neg = None if neg is None else neg.to(dev)
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    model = build_model(cfg.model_config()).to(dev, memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    steps = max(len(x_train) // cfg.batch_size, 1)
    sched = make_scheduler(opt, cfg, steps)
    if d.world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    bare = model.module if d.world > 1 else model

    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    history: list[dict] = []
    start_epoch, best_loss, best_epoch, best_state, stale = 1, math.inf, 0, None, 0
    if resume:
        if not ckpt_path.is_file():
            raise DigitrecError(f"--resume: {ckpt_path} does not exist; start the run without --resume")
        ck = load_checkpoint(ckpt_path)
        if not same_recipe(ck["config"], cfg):
            raise DigitrecError(f"--resume: {out} was started with a different configuration")
        bare.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["rng"])
        start_epoch, history = ck["epoch"] + 1, ck["history"]
        best_loss, best_epoch, best_state, stale = ck["best_loss"], ck["best_epoch"], ck["best_state"], ck["stale"]

    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        if reporter and d.main:
            reporter.epoch_start(epoch, cfg.epochs, steps)
        on_batch = reporter.batch if reporter and d.main else None
        train_loss, train_acc, lr = train_one_epoch(model, opt, sched, x_train, y_train, cfg, epoch, dev, d, on_batch,
                                                    soft, neg)
        logits = evaluate_logits(bare, x_val, dev)
        val_loss = F.cross_entropy(logits, y_val).item()
        val_acc = (logits.argmax(1) == y_val).float().mean().item()
        if cfg.schedule == "plateau":
            sched.step(val_loss)
        row = dict(epoch=epoch, train_loss=round(train_loss, 6), train_acc=round(train_acc, 6),
                   val_loss=round(val_loss, 6), val_acc=round(val_acc, 6), lr=lr,
                   seconds=round(time.perf_counter() - t0, 3))
        history.append(row)
        if val_loss < best_loss:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(bare.state_dict()) if cfg.early_stop_patience else None
        else:
            stale += 1
        stop = cfg.early_stop_patience is not None and stale >= cfg.early_stop_patience
        if d.main:  # checkpoint first: a log row then always has a checkpoint to resume from
            save_checkpoint(ckpt_path, {
                "config": json.loads(json.dumps(cfg.to_dict())), "epoch": epoch, "model": bare.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
                "history": history, "best_loss": best_loss, "best_epoch": best_epoch, "best_state": best_state,
                "stale": stale,
            })
            write_log(out / "training_log.csv", history)
            if reporter:
                reporter.epoch_end(row, stop)
        if stop:
            break

    if cfg.early_stop_patience is not None and best_state is not None:
        bare.load_state_dict(best_state)  # early stopping restores the best weights
    else:
        best_epoch = history[-1]["epoch"] if history else 0
    bare.cpu().eval()  # the run folder (export, summary, plots) is written on the CPU whatever trained it
    return RunResult(out=out, model=bare, history=history, best_epoch=best_epoch, train_images=len(x_train))


def run(cfg: TrainConfig, out: Path, *, device: str = "auto", resume: bool = False,
        data_dir: Path | None = None, reporter=None) -> ModelCard | None:
    """Train, then (on the main process) write the whole run folder; returns the model card."""
    from digitrec.training.runs import write_run_folder

    result = train(cfg, out, device=device, resume=resume, data_dir=data_dir, reporter=reporter)
    try:
        if dist.is_initialized() and dist.get_rank() != 0:
            return None
        seconds = sum(row["seconds"] for row in result.history)  # honest across --resume
        return write_run_folder(result, cfg, device=str(resolve_device(device)), seconds=seconds,
                                data_dir=data_dir)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
