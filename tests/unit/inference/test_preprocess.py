"""to_mnist / open_image: every input a user can send becomes an MNIST-style digit, None, or a clear error."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw, ImageOps

from digitrec.inference.preprocess import BOX, ImageError, locate, open_image, to_gray, to_mnist


def draw_seven(size: int = 200, box: tuple[int, int, int, int] = (50, 30, 150, 170), width: int = 14):
    """A dark '7' on white paper: asymmetric, so rotations and flips are visible."""
    im = Image.new("L", (size, size), 255)
    x0, y0, x1, y1 = box
    ImageDraw.Draw(im).line([(x0, y0), (x1, y0), (x0 + (x1 - x0) // 3, y1)], fill=0, width=width, joint="curve")
    return im


def png_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def close(a: np.ndarray, b: np.ndarray, tol: float = 0.08) -> bool:
    """Same digit in the same place: mean absolute difference well below a one-pixel shift's."""
    return a is not None and b is not None and float(np.abs(a - b).mean()) < tol


@pytest.fixture(scope="module")
def seven():
    return draw_seven()


@pytest.fixture(scope="module")
def ref(seven):
    return to_mnist(seven)


def bbox(x: np.ndarray, level: float = 0.05) -> tuple[int, int]:
    rows, cols = np.nonzero((x > level).any(1))[0], np.nonzero((x > level).any(0))[0]
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[:28, :28]
    return float((x * ys).sum() / x.sum()), float((x * xs).sum() / x.sum())


def test_output_is_mnist_shaped_white_on_black(ref):
    assert ref.shape == (28, 28) and ref.dtype == np.float32
    assert ref.min() == 0.0 and ref.max() == 1.0
    assert ref[0].sum() == 0 and ref[:, 0].sum() == 0  # black frame, white ink
    assert max(bbox(ref)) in (BOX - 1, BOX, BOX + 1)  # the digit fills the box


def _alpha_ink(seven: Image.Image, mode: str) -> Image.Image:
    """Black ink on a fully transparent background whose colour is black too (what canvases export)."""
    ink = ImageOps.invert(seven)
    if mode == "RGBA":
        return Image.merge("RGBA", (*Image.new("RGB", seven.size, 0).split(), ink))
    return Image.merge("LA", (Image.new("L", seven.size, 0), ink))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "I;16", "I", "CMYK", "1", "F", "RGB"])
def test_every_image_mode_gives_the_same_digit(seven, ref, mode):
    if mode in ("RGBA", "LA"):
        im = _alpha_ink(seven, mode)
    elif mode == "P":  # palette with a transparent background entry that is black underneath
        im = Image.fromarray((np.asarray(seven) < 128).astype(np.uint8), "P")  # 0 = paper, 1 = ink
        im.putpalette([0, 0, 0, 0, 0, 0])  # both black: only transparency tells them apart
        im.info["transparency"] = 0
    elif mode == "I;16":
        im = Image.fromarray((np.asarray(seven, np.uint16) * 257).astype("<u2"))
    elif mode == "I":
        im = Image.fromarray(np.asarray(seven, np.int32) * 257)
    elif mode == "F":
        im = Image.fromarray(np.asarray(seven, np.float32) / 255, "F")
    else:
        im = seven.convert(mode)
    assert im.mode == mode
    assert close(to_mnist(im), ref), mode


def test_png_with_alpha_and_16_bit_png_from_bytes(seven, ref):
    assert close(to_mnist(png_bytes(_alpha_ink(seven, "RGBA"))), ref)
    sixteen = Image.fromarray((np.asarray(seven, np.uint16) * 257).astype("<u2"))
    assert close(to_mnist(png_bytes(sixteen)), ref)


def test_exif_orientation_is_applied(seven, ref):
    stored = seven.convert("RGB").transpose(Image.Transpose.ROTATE_90)  # camera sensor orientation
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = png_bytes(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert open_image(data).size == seven.size
    assert close(to_mnist(data), ref)
    assert not close(to_mnist(png_bytes(stored, "JPEG", quality=95)), ref)  # without the tag it is sideways


def test_animated_gif_uses_the_first_frame(seven, ref):
    other = draw_seven(box=(60, 40, 80, 170))  # a thin '1'-like shape
    data = png_bytes(seven.convert("P"), "GIF", save_all=True, append_images=[other.convert("P")], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert close(to_mnist(data), ref)


def test_polarity_is_detected_both_ways(seven, ref):
    assert close(to_mnist(ImageOps.invert(seven)), ref)  # light chalk on a dark board
    grey = np.asarray(seven, np.float32) * 0.4 + 60  # dark grey ink on mid-grey paper
    assert close(to_mnist(grey.astype(np.uint8)), ref)


def test_tiny_off_centre_digit_is_centred_and_size_normalised(ref):
    small = draw_seven(size=280, box=(215, 20, 235, 48), width=3)  # 28 px high in the top-right corner
    x = to_mnist(small)
    assert max(bbox(x)) in (BOX - 1, BOX, BOX + 1)
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1


@pytest.mark.parametrize("k", [2, 5, 12])
def test_a_tiny_scan_enlarged_by_repeating_pixels_reads_as_the_scan_itself(seven, k):
    """A sender enlarges a 12x10 px scan by nearest neighbour: the blocks are undone before the picture is
    enlarged smoothly, so the same digit comes out, and its box is in the enlarged picture's pixels."""
    tiny = seven.resize((12, 10), Image.Resampling.BOX)
    big = tiny.resize((12 * k, 10 * k), Image.Resampling.NEAREST)
    want, (x, y, w, h) = locate(tiny)
    assert want is not None
    for sent in (big, np.asarray(big)):
        got, box = locate(sent)
        assert np.array_equal(got, want)
        assert box == pytest.approx((x * k, y * k, w * k, h * k), abs=k)


def test_box_and_centring_options():
    x = to_mnist(draw_seven(), box=16, center="box")
    h, w = bbox(x)
    assert max(h, w) in (15, 16, 17)
    with pytest.raises(ValueError):
        to_mnist(draw_seven(), box=40)


def test_stroke_normalisation_thins_a_thick_pen():
    thick = draw_seven(width=40)
    plain, normed = to_mnist(thick, stroke=None), to_mnist(thick, stroke=2.5)
    assert (normed > 0.5).sum() < 0.8 * (plain > 0.5).sum()
    thin = draw_seven(size=280, box=(40, 20, 240, 260), width=2)  # a hairline, big
    plain, normed = to_mnist(thin, stroke=None), to_mnist(thin, stroke=2.5)
    assert (normed > 0.5).sum() > 1.3 * (plain > 0.5).sum()


def test_speckle_noise_does_not_move_the_crop(seven, ref):
    rng = np.random.default_rng(0)
    a = np.asarray(seven).copy()
    specks = rng.random(a.shape) < 0.004  # isolated dark dots all over the paper, far from the digit
    a[specks] = 0
    assert specks[:, :45].any() and specks[:, 160:].any()
    x = to_mnist(a)
    assert bbox(x) == bbox(ref) and close(x, ref)


def test_jpeg_artefacts_and_uneven_light_do_not_move_the_crop(seven, ref):
    a = np.asarray(seven, np.float32)
    light = np.linspace(1.0, 0.55, a.shape[1])[None, :]  # a shadow across the sheet
    photo = Image.fromarray(np.uint8(a * light * 0.9 + 10)).convert("RGB")
    x = to_mnist(png_bytes(photo, "JPEG", quality=15))
    assert abs(np.subtract(bbox(x), bbox(ref))).max() <= 1 and close(x, ref, 0.1)


def test_dark_corners_of_a_photo_are_not_ink(seven, ref):
    a = np.asarray(seven, np.float32)
    yy, xx = np.mgrid[-1:1:200j, -1:1:200j]
    vignette = np.clip(1 - 0.45 * (xx**2 + yy**2), 0, 1)  # corners at 10% of the centre's light
    x = to_mnist(np.uint8(a * vignette))
    assert abs(np.subtract(bbox(x), bbox(ref))).max() <= 1 and close(x, ref, 0.1)


@pytest.mark.parametrize(
    "image",
    [
        np.full((100, 100), 255, np.uint8),
        np.zeros((100, 100), np.uint8),
        np.full((50, 80, 3), 128, np.uint8),
        np.clip(np.random.default_rng(1).normal(235, 4, (200, 200)), 0, 255).astype(np.uint8),  # blank paper
        np.full((200, 200), 250, np.uint8) - (np.random.default_rng(2).random((200, 200)) < 0.0005) * 200,
        np.full((200, 200), 250, np.uint8) - (np.arange(200) % 50 < 20)[None, :] * 6,  # faint stripes
        np.asarray(Image.new("L", (280, 280), 255).point(lambda v: v)),
        np.ones((1, 1)),
    ],
    ids=["white", "black", "grey-rgb", "paper-noise", "few-specks", "faint", "canvas", "1x1"],
)
def test_blank_or_near_blank_is_none(image):
    assert to_mnist(image) is None


@pytest.mark.parametrize("seed", [1, 3, 5])
def test_a_smooth_field_of_blotches_stays_blank(seed):
    """Grey blotches over the whole picture have no flat paper anywhere: the dense path's noise (paper far
    from ink must be flat) keeps them blank, where the grain alone would call them ink."""
    rng = np.random.default_rng(seed)
    field = Image.fromarray(np.uint8(255 * rng.random((5, 5)))).resize((160, 160), Image.Resampling.BICUBIC)
    grey = 230 - np.asarray(field) / 255 * 150 + rng.normal(0, 3, (160, 160))
    assert to_mnist(np.uint8(np.clip(grey, 0, 255))) is None


def test_a_single_dot_is_not_a_digit():
    im = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(im).ellipse((130, 130, 150, 150), fill=0)
    assert to_mnist(im) is None


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height; its (tiny) data would fail if anyone decoded it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(100_000, 100_000), (5000, 5000), (4097, 4096)])
def test_too_large_images_are_refused_before_decoding(size):
    with pytest.raises(ImageError, match="too large"):
        to_mnist(_png_header_only(*size))


def test_a_real_png_bomb_is_refused_and_the_limit_is_configurable():
    bomb = png_bytes(Image.new("1", (6000, 6000)))  # 36 Mpx in a few kB
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="too large"):
        open_image(bomb)
    with pytest.raises(ImageError, match="too large"):
        to_mnist(png_bytes(draw_seven()), max_pixels=100 * 100)
    with pytest.raises(ImageError, match="too large"):
        to_mnist(np.zeros((5000, 5000), np.uint8))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not a PNG"),
        (bytes(range(256)) * 4, "not a PNG"),
        (png_bytes(draw_seven())[:300], "truncated"),
        (png_bytes(draw_seven().convert("RGB"), "JPEG")[:400], "truncated"),
    ],
    ids=["empty", "text", "garbage", "truncated-png", "truncated-jpeg"],
)
def test_unreadable_bytes_raise_a_clear_image_error(data, message):
    with pytest.raises(ImageError, match=message):
        to_mnist(data)


def test_paths_work_and_missing_files_are_clear(tmp_path, seven, ref):
    path = tmp_path / "seven.png"
    seven.save(path)
    assert close(to_mnist(path), ref) and close(to_mnist(str(path)), ref)
    with pytest.raises(ImageError, match="No such file"):
        to_mnist(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        open_image(tmp_path / "empty.png")


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a,
        lambda a: a.astype(np.float32) / 255,
        lambda a: a.astype(np.float64) / 255,
        lambda a: a.astype(np.uint16) * 257,
        lambda a: a > 127,
        lambda a: a[..., None],
        lambda a: np.repeat(a[..., None], 3, axis=2),
        lambda a: np.dstack([a, a, a, np.full_like(a, 255)]),
        lambda a: np.dstack([np.zeros_like(a)] * 3 + [255 - a]),  # black ink on transparent black
    ],
    ids=["uint8", "float32", "float64", "uint16", "bool", "HW1", "HW3", "HW4", "alpha-ink"],
)
def test_arrays_of_several_dtypes_and_shapes(seven, ref, convert):
    assert close(to_mnist(convert(np.asarray(seven))), ref)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10, 2)),
        np.zeros((2, 10, 10, 3)),
        np.zeros((0, 10)),
        np.zeros(10),
        np.full((9, 9), np.nan),
        np.zeros((9, 9), complex),
        np.array([["a"]]),
    ],
)
def test_bad_arrays_raise_value_error(bad):
    with pytest.raises(ValueError):
        to_mnist(bad)


def test_to_gray_composites_transparency_on_white():
    clear = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    assert np.allclose(to_gray(clear), 255)
    assert np.allclose(to_gray(Image.fromarray(clear, "RGBA")), 255)


def test_preprocess_does_not_import_torch():
    code = "import sys, digitrec.inference.preprocess; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


_FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
_VALID = png_bytes(draw_seven(size=64, box=(10, 10, 50, 55), width=5))


@_FUZZ
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.builds(lambda n: _VALID[:n], st.integers(0, len(_VALID))),  # every truncation
        st.builds(  # bit rot in a valid file
            lambda i, b: _VALID[:i] + bytes([b]) + _VALID[i + 1 :],
            st.integers(0, len(_VALID) - 1),
            st.integers(0, 255),
        ),
    )
)
def test_arbitrary_bytes_only_ever_raise_image_error(data):
    try:
        x = to_mnist(data)
    except ImageError:
        return
    assert x is None or (x.shape == (28, 28) and x.min() >= 0 and x.max() <= 1)


@_FUZZ
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64, np.bool_]),
        shape=st.one_of(
            hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
            st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3, 4])),
        ),
    )
)
def test_arbitrary_small_arrays_never_crash(a):
    try:
        x = to_mnist(a)
    except ValueError:
        return
    assert x is None or (x.shape == (28, 28) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1)
