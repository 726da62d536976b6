"""Number mode and the saliency overlay in a real Chromium (Playwright) against a real server: a number
written with the mouse on the wide pad is read with one labelled box per digit; the saliency overlay over the
28x28 view is toggled with the mouse and the keyboard."""

from __future__ import annotations

import pytest

from digitrec.testing.handwriting import number_strokes
from digitrec.testing.servers import live_server

pytestmark = pytest.mark.browser

NUMBER_SETTLED = """() => document.querySelector('.number-answer').getAttribute('aria-busy') === 'false'
  && document.getElementById('number').dataset.final === 'true'"""
SALIENCY = """() => { const c = document.getElementById('saliency');
  const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""


@pytest.fixture(scope="module")
def server():
    with live_server() as url:
        yield url


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server + "/")
    page.wait_for_function("() => document.getElementById('canvas').width > 0")
    yield page
    assert not errors, errors
    ctx.close()


def write_number(page, digits: str, seed: int) -> None:
    """Mouse strokes of a handwritten number, fitted into the wide pad as laid out (aspect kept)."""
    strokes, w, h = number_strokes(digits, seed)
    b = page.locator("#number-canvas").bounding_box()
    k = min(b["width"] / w, b["height"] / h)
    x0, y0 = b["x"] + (b["width"] - k * w) / 2, b["y"] + (b["height"] - k * h) / 2
    for digit in strokes:
        for s in digit:
            pts = [(x0 + x * k, y0 + y * k) for x, y in s]
            page.mouse.move(*pts[0])
            page.mouse.down()
            for x, y in pts[1::2] + [pts[-1]]:
                page.mouse.move(x, y)
            page.mouse.up()


@pytest.mark.parametrize(("digits", "seed"), [("2024", 1), ("357", 6)])
def test_a_number_written_with_the_mouse_is_read_with_a_box_per_digit(page, digits, seed):
    toggle = page.locator("#mode-number")
    assert toggle.get_attribute("aria-pressed") == "false" and page.locator("#number-section").is_hidden()
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.locator("#number-section").is_visible() and page.locator("#digit-section").is_hidden()
    pad = page.locator("#number-canvas").bounding_box()
    assert pad["width"] > 2.5 * pad["height"]  # the wide canvas
    write_number(page, digits, seed)
    page.wait_for_function(NUMBER_SETTLED)
    assert page.locator("#number").text_content() == digits
    labels = page.locator(".digit-box-label").all_text_contents()
    assert "".join(labels) == digits
    boxes = [page.locator(".digit-box").nth(i).bounding_box() for i in range(len(digits))]
    xs = [b["x"] for b in boxes]
    assert xs == sorted(xs)
    for b in boxes:  # every box lies on the pad
        assert pad["x"] - 1 <= b["x"] and b["x"] + b["width"] <= pad["x"] + pad["width"] + 1
        assert pad["y"] - 1 <= b["y"] and b["y"] + b["height"] <= pad["y"] + pad["height"] + 1
    assert page.locator("#number-digits li").count() == len(digits)
    # Undo takes the last stroke away and the number is read again; Escape clears everything.
    page.keyboard.press("Control+z")
    page.wait_for_function(NUMBER_SETTLED)
    page.keyboard.press("Escape")
    page.wait_for_function(NUMBER_SETTLED)
    assert page.locator("#number").text_content() == "–" and page.locator(".digit-box").count() == 0
    # Back to one digit, from the keyboard.
    page.keyboard.press("Alt+n")
    assert page.locator("#digit-section").is_visible() and toggle.get_attribute("aria-pressed") == "false"


def test_number_mode_is_linkable(browser, server):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(server + "/#number")
    page.wait_for_function("() => document.getElementById('number-canvas').width > 0")
    assert page.locator("#number-section").is_visible()
    assert page.locator("#mode-number").get_attribute("aria-pressed") == "true"
    ctx.close()


def test_saliency_overlay_toggles_from_mouse_and_keyboard(page):
    b = page.locator("#canvas").bounding_box()
    # A 7: the top bar, then the diagonal.
    for stroke in ([(0.25, 0.2), (0.5, 0.2), (0.75, 0.2)], [(0.75, 0.2), (0.6, 0.5), (0.45, 0.85)]):
        pts = [(b["x"] + x * b["width"], b["y"] + y * b["height"]) for x, y in stroke]
        page.mouse.move(*pts[0])
        page.mouse.down()
        for p in pts[1:]:
            page.mouse.move(*p, steps=6)
        page.mouse.up()
    page.wait_for_function("""() => document.querySelector('.result').getAttribute('aria-busy') === 'false'
      && document.getElementById('prediction').dataset.final === 'true'""")
    assert page.locator("#prediction").text_content() == "7"
    button, overlay = page.locator("#saliency-toggle"), page.locator("#saliency")
    assert overlay.is_hidden() and button.get_attribute("aria-pressed") == "false"
    button.click()
    page.wait_for_function("() => document.getElementById('saliency').dataset.state === 'shown'")
    assert overlay.is_visible() and button.get_attribute("aria-pressed") == "true"
    assert overlay.bounding_box() == page.locator("#model-input").bounding_box()  # exactly over the 28x28
    assert 20 < page.evaluate(SALIENCY) < 28 * 28
    # The keyboard: focus the button, Enter hides it, Space shows it again.
    button.focus()
    page.keyboard.press("Enter")
    assert overlay.is_hidden() and button.get_attribute("aria-pressed") == "false"
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('saliency').dataset.state === 'shown'")
    assert overlay.is_visible()
    # A new drawing replaces the explanation: Escape clears, and the overlay is empty.
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.getElementById('saliency').dataset.state === 'empty'")
    assert page.evaluate(SALIENCY) == 0
