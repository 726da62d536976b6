"""The drawing page in a real Chromium (Playwright) against a real server: digits drawn with a mouse, a
finger (CDP touch events) and a pen, undo, clear, keyboard use, and the phone and desktop layouts."""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
import pytest

from digitrec.testing.servers import live_server
from digitrec.training.synth import stroke_path

pytestmark = pytest.mark.browser

# Timestamps for the latency check: when the pen lifted, and when the answer on screen last changed.
PROBE = """
window.__up = 0; window.__shown = 0;
document.addEventListener("pointerup", () => { window.__up = performance.now(); }, true);
addEventListener("DOMContentLoaded", () => {
  new MutationObserver(() => { window.__shown = performance.now(); }).observe(
    document.querySelector(".result"), {subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ["data-final", "style", "class"]});
});
"""
SETTLED = """() => document.querySelector('.result').getAttribute('aria-busy') === 'false'
  && document.getElementById('prediction').dataset.final === 'true'"""
INK = """() => { const c = document.getElementById('canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 128) n++; return n; }"""
SEEN = """() => { const c = document.getElementById('model-input');
  const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
  let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s; }"""


@pytest.fixture(scope="module")
def server():
    with live_server() as url:
        yield url


def open_page(browser, server, **context):
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.add_init_script(PROBE)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server + "/")
    page.wait_for_function("() => document.getElementById('canvas').width > 0")
    page.errors = errors  # type: ignore[attr-defined]
    return page


Strokes = list[list[tuple[float, float]]]


def to_screen(page, strokes: Strokes, size: int = 280) -> Strokes:
    """synth.stroke_path's 280x280 canvas coordinates -> page coordinates on the canvas as laid out."""
    b = page.locator("#canvas").bounding_box()
    sx, sy = b["width"] / size, b["height"] / size
    return [[(b["x"] + x * sx, b["y"] + y * sy) for x, y in s] for s in strokes]


def draw_mouse(page, strokes) -> None:
    for s in to_screen(page, strokes):
        page.mouse.move(*s[0])
        page.mouse.down()
        for x, y in s[1::2] + [s[-1]]:
            page.mouse.move(x, y)
        page.mouse.up()


def draw_touch(page, strokes) -> None:
    """A finger, through the DevTools protocol: Chromium turns these into pointer events of type touch."""
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, points: list[dict]) -> None:
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    for s in to_screen(page, strokes):
        touch("touchStart", [{"x": s[0][0], "y": s[0][1]}])
        for x, y in s[1::2] + [s[-1]]:
            touch("touchMove", [{"x": x, "y": y}])
        touch("touchEnd", [])
    cdp.detach()


def draw_pen(page, strokes) -> None:
    """A stylus: synthetic PointerEvents with pointerType 'pen' (no pen hardware in a headless browser)."""
    page.evaluate(
        """(strokes) => {
          const c = document.getElementById('canvas');
          const fire = (type, [x, y]) => c.dispatchEvent(new PointerEvent(type, {
            pointerId: 7, pointerType: 'pen', isPrimary: true, clientX: x, clientY: y,
            button: 0, buttons: type === 'pointerup' ? 0 : 1,
            pressure: 0.5, bubbles: true, cancelable: true}));
          for (const s of strokes) {
            fire('pointerdown', s[0]);
            for (const p of s.slice(1)) fire('pointermove', p);
            fire('pointerup', s[s.length - 1]);
          }
        }""",
        to_screen(page, strokes),
    )


REQUESTS = """() => performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/predict'))
  .map(e => [e.startTime, e.responseEnd])"""


def check_throttled(page, strokes: int) -> None:
    """Live prediction: one request in flight at most, and no more than one per ~150 ms while drawing
    (a stroke's end may send at once)."""
    spans = page.evaluate(REQUESTS)
    assert spans, "no prediction request was sent"
    for (_, end), (start, _) in pairwise(spans):
        assert start >= end - 1, f"two requests in flight at once: {spans}"
    quick = sum(b[0] - a[0] < 140 for a, b in pairwise(spans))
    assert quick <= strokes, f"{quick} requests less than 140 ms apart for {strokes} strokes: {spans}"


def answer(page) -> dict:
    """Wait for the final answer and read everything the page shows about it."""
    page.wait_for_function(SETTLED, timeout=10_000)
    bars = page.eval_on_selector_all(
        "#probabilities [data-digit]",
        """els => els.map(e => ({digit: e.dataset.digit, width: e.querySelector('.bar-fill').style.width,
            label: e.querySelector('.bar-value').textContent, top: e.classList.contains('top')}))""",
    )
    return {
        "prediction": page.inner_text("#prediction").strip(),
        "confidence": page.inner_text("#confidence").strip(),
        "bars": bars,
        "latency_ms": page.evaluate("() => window.__shown - window.__up"),
        "seen": page.evaluate(SEEN),
    }


def check_consistent(a: dict) -> None:
    """The bars, labels and the big digit tell the same story."""
    assert [b["digit"] for b in a["bars"]] == [str(d) for d in range(10)]
    widths = [float(b["width"].rstrip("%") or 0) for b in a["bars"]]
    assert abs(sum(widths) - 100) < 1.5, widths
    best = int(a["prediction"])
    assert widths[best] == max(widths), (best, widths)  # the digit shown has the longest bar
    assert a["bars"][best]["top"] and sum(b["top"] for b in a["bars"]) == 1
    assert a["bars"][best]["label"] == a["confidence"]
    assert re.fullmatch(r"\d{1,3}(\.\d)?%", a["confidence"])
    assert abs(float(a["confidence"].rstrip("%")) - widths[best]) < 0.6
    assert a["seen"] > 0, "the 28x28 image the model saw is not shown"


def test_mouse_drawn_digits_are_read_live_and_at_pen_up(browser, server):
    page = open_page(browser, server, viewport={"width": 1280, "height": 800})
    rng = np.random.default_rng(2024)
    read, latencies = [], []
    for digit in range(10):
        page.click("#clear") if page.is_enabled("#clear") else None
        page.evaluate("() => performance.clearResourceTimings()")
        strokes = stroke_path(digit, rng)
        draw_mouse(page, strokes)
        a = answer(page)
        check_consistent(a)
        check_throttled(page, len(strokes))
        read.append(int(a["prediction"]))
        latencies.append(a["latency_ms"])
    # The final answer is on screen within 0.3 s of lifting the pen (median, measured inside the page).
    assert float(np.median(latencies)) < 300, latencies
    correct = sum(r == d for d, r in enumerate(read))
    assert correct >= 8, f"read {read} for 0..9"
    assert not page.errors, page.errors
    page.context.close()


def test_undo_clear_and_keyboard(browser, server):
    page = open_page(browser, server, viewport={"width": 1280, "height": 800})
    assert page.inner_text("#prediction").strip() == "–"
    assert page.is_disabled("#undo") and page.is_disabled("#clear")
    rng = np.random.default_rng(5)
    draw_pen(page, stroke_path(1, rng))
    first = answer(page)
    check_consistent(first)
    ink_one = page.evaluate(INK)
    draw_pen(page, [[(20.0, 20.0), (260.0, 260.0)], [(260.0, 20.0), (20.0, 260.0)]])  # scribble two strokes
    answer(page)
    assert page.evaluate(INK) > ink_one
    page.click("#undo")
    page.click("#undo")
    again = answer(page)
    assert page.evaluate(INK) == ink_one  # exactly the first drawing again
    assert again["prediction"] == first["prediction"]

    # Keyboard: Tab reaches the buttons with a visible focus ring; Enter on Clear empties the pad.
    page.locator("#undo").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "clear"
    assert page.evaluate("() => document.activeElement.matches(':focus-visible')")
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") not in ("", "none")
    page.keyboard.press("Enter")
    page.wait_for_function(SETTLED)
    assert page.inner_text("#prediction").strip() == "–" and page.inner_text("#confidence").strip() == "–"
    widths = page.eval_on_selector_all("#probabilities .bar-fill", "els => els.map(e => e.style.width)")
    assert [float(w.rstrip("%")) for w in widths] == [0.0] * 10
    assert page.evaluate(INK) == 0 and page.evaluate(SEEN) == 0
    assert page.is_disabled("#undo") and page.is_disabled("#clear")

    draw_mouse(page, stroke_path(7, rng))
    answer(page)
    page.keyboard.press("Control+z")  # the only stroke of a 7: undo leaves nothing
    page.wait_for_function(SETTLED)
    assert page.inner_text("#prediction").strip() == "–" and page.evaluate(INK) == 0
    assert not page.errors, page.errors
    page.context.close()


def test_touch_drawing_on_a_phone(browser, server):
    page = open_page(
        browser,
        server,
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    box = page.locator("#canvas").bounding_box()
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert sizes[0] <= sizes[1] == 390, "horizontal scroll on a phone"
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 300
    assert box["y"] + box["height"] <= 844, "the pad does not fit on the screen"
    assert page.evaluate("() => getComputedStyle(document.getElementById('canvas')).touchAction") == "none"
    for name in ("#undo", "#clear"):
        b = page.locator(name).bounding_box()
        assert b["height"] >= 44 and b["y"] + b["height"] <= 844  # reachable without scrolling
    answer_box = page.locator("#prediction").bounding_box()
    assert answer_box["y"] + answer_box["height"] <= 844, "the answer is off screen while drawing"

    rng = np.random.default_rng(11)
    read = []
    for digit in (0, 3, 7):
        page.tap("#clear") if page.is_enabled("#clear") else None
        before = page.evaluate("() => scrollY")
        draw_touch(page, stroke_path(digit, rng))
        a = answer(page)
        assert page.evaluate("() => scrollY") == before, "drawing scrolled the page"
        check_consistent(a)
        read.append(int(a["prediction"]))
    assert sum(r == d for d, r in zip((0, 3, 7), read, strict=True)) >= 2, read
    assert not page.errors, page.errors
    page.context.close()


def test_desktop_layout_shows_pad_and_answer_side_by_side(browser, server):
    page = open_page(browser, server, viewport={"width": 1280, "height": 800})
    pad = page.locator("#canvas").bounding_box()
    bars = page.locator("#probabilities").bounding_box()
    assert pad["width"] >= 360 and pad["y"] + pad["height"] <= 800
    assert bars["x"] > pad["x"] + pad["width"]  # side by side, the answer visible while drawing
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    page.wait_for_function("() => document.getElementById('model-info').textContent.includes('sha256')")
    page.context.close()
