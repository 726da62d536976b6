"""Hostile inputs to the image decoder: costly encodings are refused from the header with a reason, ordinary
files still read, and the decoder, fuzzed in every format we accept, only ever raises ImageError. The same files
against a real server: tests/e2e/server/test_hostile_server.py; their cost: benchmarks/hostile.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from digitrec.inference.images import ImageError, ImageTooLarge, UnsupportedImage, read_header
from digitrec.inference.preprocess import to_mnist
from digitrec.testing.hostile import (
    heic_like,
    ico_wrapping_png,
    jpeg_many_scans,
    jpeg_with_fill,
    rle8_bmp,
)
from digitrec.training.synth import render


@pytest.mark.parametrize(
    ("data", "error", "phrase"),
    [
        (heic_like(), UnsupportedImage, "HEIC format; send PNG, JPEG, WebP, BMP or GIF"),
        (ico_wrapping_png(64), UnsupportedImage, "ICO format"),
        (rle8_bmp(64, 64), UnsupportedImage, "run-length"),
        (jpeg_with_fill(4096), UnsupportedImage, "fill bytes"),
        (jpeg_many_scans(70), UnsupportedImage, "scans"),
    ],
    ids=["heic", "ico", "rle-bmp", "jpeg-fill", "jpeg-scans"],
)
def test_costly_encodings_are_refused_from_the_header_with_a_reason(data, error, phrase):
    with pytest.raises(error, match=phrase):
        read_header(data)


def test_the_pixel_limit_reports_the_size():
    with pytest.raises(ImageTooLarge) as caught:
        read_header(_encode(Image.new("L", (300, 200)), "PNG"), max_pixels=50_000)
    assert caught.value.size == (300, 200)


def test_ordinary_progressive_jpegs_and_small_fills_still_read():
    seven = render(7, np.random.default_rng(3), "photo", size=200).convert("RGB")
    progressive = _encode(seven, "JPEG", progressive=True)
    assert 1 < progressive.count(b"\xff\xda") <= 64
    padded = progressive[:2] + b"\xff" * 16 + progressive[2:]  # a few fill bytes are common and fine
    for data in (progressive, padded):
        assert to_mnist(data) is not None


def test_a_transparent_canvas_is_composited_on_white_at_any_size():
    """Big transparent images are shrunk and composited strip by strip: the ink survives, at every size."""
    ink = Image.new("RGBA", (600, 600), (0, 0, 0, 0))
    ink.paste((0, 0, 0, 255), (280, 100, 320, 500))  # a "1" in opaque black on a transparent canvas
    small = to_mnist(_encode(ink, "PNG"))
    big = to_mnist(_encode(ink.resize((3000, 3000), Image.Resampling.NEAREST), "PNG"))
    palette = to_mnist(_encode(ink.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"))
    for x in (small, big, palette):
        assert x is not None and x[:, 14].sum() > 10 * x[:, 4].sum()  # a vertical bar down the middle


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def _seeds() -> list[bytes]:
    """One valid small file per accepted format and mode that takes its own decoder path."""
    rng = np.random.default_rng(5)
    seven = render(7, rng, "scan", size=48).convert("L")
    rgba = seven.convert("RGBA")
    rgba.putalpha(seven.point(lambda v: 255 - v))
    frames = [seven.convert("RGB"), render(1, rng, "canvas", size=48).convert("RGB")]
    anim = io.BytesIO()
    frames[0].save(anim, "WEBP", save_all=True, append_images=frames[1:], duration=50)
    return [
        _encode(seven, "PNG"),
        _encode(rgba, "PNG"),
        _encode(seven.convert("P"), "PNG", transparency=0),
        _encode(seven.convert("RGB"), "JPEG", progressive=True, quality=80),
        _encode(seven.convert("RGB"), "JPEG", quality=60),
        _encode(rgba, "WEBP"),
        anim.getvalue(),
        _encode(seven.convert("RGB"), "BMP"),
        _encode(seven.convert("P"), "GIF"),
    ]


_SEEDS = _seeds()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    cut=st.integers(0, 4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
    repeat=st.tuples(st.integers(0, 4000), st.integers(0, 64), st.integers(0, 20)),
)
def test_decoder_fuzz_every_accepted_format_only_raises_image_error(seed, cut, flips, repeat):
    """Truncations, bit rot and repeated chunks of a valid PNG (grey, RGBA, palette + tRNS), JPEG (baseline,
    progressive), WebP (still, animated), BMP and GIF: a digit, None, or ImageError; never anything else."""
    data = bytearray(seed)
    for at, value in flips:
        data[at % len(data)] = value
    start, length, times = repeat
    start %= len(data)
    data[start:start] = data[start : start + length] * times
    data = bytes(data[: max(1, len(data) - cut % len(data))]) if cut % 3 == 0 else bytes(data)
    try:
        x = to_mnist(data)
    except ImageError:
        return
    assert x is None or (x.shape == (28, 28) and x.min() >= 0 and x.max() <= 1)
