"""The gate's pictures: digits and non-digits of every kind it learns, in MNIST form (`to_mnist`, as a user's
image), made once per run and cached by `training_data`. Which kinds and why: digitrec.training.gate."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERSHEY = (0, 1, 2, 3, 4, 6, 7)  # cv2.FONT_HERSHEY_* (SIMPLEX ... SCRIPT_COMPLEX); 16 adds italics
# In the cache's name: a cache made before the pictures changed (2: T became a negative; 3: to_mnist reads
# tiny bold scans and dense grain differently; 4: to_mnist enlarges small pictures with Lanczos) is not reused.
PICTURES_VERSION = 4


def hershey_glyph(ch: str, rng: np.random.Generator) -> Image.Image:
    """One character in an OpenCV Hershey font (single pen strokes), any pen width, posed like a hand's."""
    import cv2

    from digitrec.training.negatives import CANVAS, _jitter

    font = int(HERSHEY[int(rng.integers(len(HERSHEY)))]) | (16 if rng.random() < 0.3 else 0)
    pen = int(rng.integers(2, 13))
    (_, h), _ = cv2.getTextSize(ch, font, 1.0, pen)
    scale = rng.uniform(55, 105) / max(h, 1)
    (tw, th), base = cv2.getTextSize(ch, font, scale, pen)
    a = np.full((CANVAS, CANVAS), 255, np.uint8)
    x = int((CANVAS - tw) / 2 + rng.uniform(-10, 10))
    y = int((CANVAS + th) / 2 + rng.uniform(-10, 10))
    cv2.putText(a, ch, (x, y), font, scale, 0, pen, cv2.LINE_AA)
    return _jitter(Image.fromarray(a), rng)


def texture(rng: np.random.Generator) -> Image.Image:
    """A picture that holds no writing: a grating, checks, blotches, grain, or a filled ellipse/polygon."""
    from PIL import ImageDraw

    side = int(rng.integers(40, 200))
    kind = int(rng.integers(6))
    yy, xx = np.mgrid[0:side, 0:side] / side
    if kind == 0:  # grating, any angle and period, sharp or soft
        th, f = rng.uniform(0, math.pi), rng.uniform(2, 14)
        v = np.sin(2 * math.pi * f * (xx * math.cos(th) + yy * math.sin(th)) + rng.uniform(0, 6.3))
        a = v > rng.uniform(-0.5, 0.5) if rng.random() < 0.6 else (v + 1) / 2
    elif kind == 1:  # checks, possibly rectangular
        fx, fy = rng.integers(2, 9, 2)
        a = (np.floor(xx * fx) + np.floor(yy * fy)) % 2
    elif kind == 2:  # smooth blotches
        k = int(rng.integers(2, 10))
        small = Image.fromarray(np.uint8(255 * rng.random((k, k))))
        a = np.asarray(small.resize((side, side), Image.Resampling.BILINEAR)) / 255.0
    elif kind == 3:  # grain
        a = rng.random((side, side)) < rng.uniform(0.05, 0.5)
    else:  # one or a few filled ellipses or polygons
        im = Image.new("L", (side, side), 0)
        d = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4)) if kind == 5 else 1):
            c = rng.uniform(0.2, 0.8, 2) * side
            r = rng.uniform(0.12, 0.4) * side * np.array([1.0, rng.uniform(0.5, 1.0)])[rng.permutation(2)]
            if rng.random() < 0.5:
                d.ellipse((c[0] - r[0], c[1] - r[1], c[0] + r[0], c[1] + r[1]), fill=255)
            else:
                n = int(rng.integers(3, 7))
                t = rng.uniform(0, 2 * math.pi) + np.sort(rng.uniform(0, 2 * math.pi, n))
                d.polygon([(float(c[0] + r[0] * math.cos(u)), float(c[1] + r[1] * math.sin(u))) for u in t],
                          fill=255)
        a = np.asarray(im) / 255.0
    a = np.asarray(a, np.float64)
    paper, ink = rng.uniform(170, 255), rng.uniform(0, 120)
    grey = paper - a * (paper - ink) + rng.normal(0, rng.uniform(0, 10), a.shape)
    if rng.random() < 0.5:
        grey = 255 - grey
    return Image.fromarray(np.uint8(np.clip(grey, 0, 255)), "L")


def _mnist_form(images, n: int) -> np.ndarray:
    """Up to n pictures through `to_mnist` (blank ones skipped): (k, 28, 28) uint8."""
    from digitrec.inference.preprocess import to_mnist

    out = []
    for im in images:
        a = to_mnist(im)
        if a is not None:
            out.append(np.uint8(np.clip(a * 255 + 0.5, 0, 255)))
        if len(out) == n:
            break
    return np.stack(out)


def drawn_digits(n: int, rng: np.random.Generator) -> np.ndarray:
    """n digits in the training fonts and the Hershey fonts, posed and bent as the negatives are."""
    from digitrec.training.negatives import render_glyph, train_fonts, warp

    fonts = train_fonts()

    def gen():
        while True:
            ch = str(int(rng.integers(10)))
            im = hershey_glyph(ch, rng) if rng.random() < 0.5 else \
                render_glyph(ch, fonts[int(rng.integers(len(fonts)))], rng)
            if im is not None:
                yield warp(im, rng) if rng.random() < 0.75 else im

    return _mnist_form(gen(), n)


def drawn_negatives(n: int, rng: np.random.Generator, outlines: float = 0.0) -> np.ndarray:
    """n Hershey letters and symbols (look-alikes left out) and textures, in MNIST form; `outlines` of them
    four-sided outlines instead (two thirds of those taken from the letters' share)."""
    from digitrec.training.negatives import LOOKALIKES, outline, warp

    chars = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+*=#@&%$?<>^~"
             if c not in LOOKALIKES]

    def gen():
        while True:
            u = rng.random()
            if u < 0.7 - 2 * outlines / 3:
                im = hershey_glyph(chars[int(rng.integers(len(chars)))], rng)
                yield warp(im, rng) if rng.random() < 0.75 else im
            elif u < 1 - outlines:
                yield texture(rng)
            else:
                yield outline(rng)

    return _mnist_form(gen(), n)


def low_res(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n of these MNIST-form pictures (uint8, white on black) as a coarse scan sends them: shrunk to 7-16 px on
    light paper, sometimes upscaled again by the sender, then through `to_mnist`. Digits and non-digits both
    get it, so that "blurry" is no cue for either side."""

    resample = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.NEAREST)

    def gen():
        while True:
            a = images[int(rng.integers(len(images)))].astype(np.float32)
            paper, ink = rng.uniform(150, 245), rng.uniform(20, 110)
            im = Image.fromarray(np.uint8(paper - a / 255 * (paper - ink)), "L")
            side = int(rng.integers(7, 17))
            im = im.resize((side, side), Image.Resampling.BOX)
            if rng.random() < 0.5:
                f = int(rng.integers(4, 13))
                im = im.resize((side * f, side * f), resample[int(rng.integers(3))])
            yield im

    return _mnist_form(gen(), n)


def build_data(seed: int, n_views: int, n_pool: int, n_drawn: int, outlines: float = 0.0,
               log=print) -> dict[str, np.ndarray]:
    """Every training picture, made once: uint8 arrays of (k, 28, 28)."""
    from digitrec.inference.preprocess import to_mnist
    from digitrec.training.data import load_mnist, stratified_split
    from digitrec.training.negatives import negatives

    rng = np.random.default_rng(seed)
    mnist = load_mnist()
    train = stratified_split(mnist.train_labels).train
    digits = mnist.train_images[train]
    t0 = time.time()
    pick = rng.choice(len(digits), min(n_views, len(digits)), replace=False)
    views = [to_mnist(digits[i]) for i in pick]
    views = np.stack([np.uint8(np.clip(v * 255 + 0.5, 0, 255)) for v in views if v is not None])
    log(f"{len(views)} image-path views of training digits ({time.time() - t0:.0f} s)")
    t0 = time.time()
    drawn = drawn_digits(n_drawn, rng)
    log(f"{len(drawn)} font and Hershey digits ({time.time() - t0:.0f} s)")
    t0 = time.time()
    pool = negatives(n_pool, seed=seed + 1)
    log(f"{len(pool)} outlier-exposure negatives ({time.time() - t0:.0f} s)")
    t0 = time.time()
    other = drawn_negatives(n_drawn, rng, outlines)
    log(f"{len(other)} Hershey letters/symbols and textures ({time.time() - t0:.0f} s)")
    return {"digits": digits, "views": views, "drawn": drawn, "pool": pool, "other": other}


def unseen_negatives(seed: int, outlines: float = 0.0, n_pool: int = 3_000, n_drawn: int = 2_000) -> np.ndarray:
    """Non-digits of the kinds the gate is trained against, from seeds its training never uses."""
    from digitrec.training.negatives import negatives

    rng = np.random.default_rng(seed + 1001)
    return np.concatenate([negatives(n_pool, seed=seed + 1001), drawn_negatives(n_drawn, rng, outlines)])


def training_data(out: Path, *, seed: int, views: int, pool: int, drawn: int, low_res_n: int,
                  outlines: float = 0.0) -> dict[str, np.ndarray]:
    """Every training picture, from the cache in `out` when these options made it before."""
    tag = f"-outlines{outlines:g}" if outlines else ""
    cache = out / f"data-v{PICTURES_VERSION}-seed{seed}-{views}-{pool}-{drawn}{tag}.npz"
    if cache.is_file():
        data = dict(np.load(cache))
    else:
        data = build_data(seed, views, pool, drawn, outlines)
        np.savez_compressed(cache, **data)
    if low_res_n and "digits_low" not in data:  # made from the pictures above, so cached apart
        low = out / f"low-v{PICTURES_VERSION}-seed{seed}-{low_res_n}{tag}.npz"
        if low.is_file():
            data.update(np.load(low))
        else:
            rng = np.random.default_rng(seed + 2)
            extra = {"digits_low": low_res(data["digits"], low_res_n, rng),
                     "negatives_low": low_res(np.concatenate([data["pool"], data["other"]]), low_res_n, rng)}
            np.savez_compressed(low, **extra)
            data.update(extra)
        print(f"{len(data['digits_low'])} digits and {len(data['negatives_low'])} non-digits at low resolution")
    return data
