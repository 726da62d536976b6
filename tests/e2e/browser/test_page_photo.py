"""Photos and image files on the page, in a real Chromium (Playwright) against a real server under its strict
CSP: "Upload or take a photo" in both modes, drag-and-drop and paste; the picture is scaled down before it is
sent, shown with a box around each digit found, and its answer lands in #prediction / #number with the 28x28
the model saw and the feedback control. Real files, made here: synthetic handwriting on paper (PNG and JPEG)."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from digitrec.testing.handwriting import draw_number
from digitrec.testing.servers import cli_server
from digitrec.training.synth import render

pytestmark = pytest.mark.browser

# CSP violations, and each file the page puts in a form (Playwright does not show a blob upload's bytes).
INIT = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
window.__sent = [];
const append = FormData.prototype.append;
FormData.prototype.append = function (name, value, ...rest) {
  if (value instanceof Blob) window.__sent.push(value);
  return append.call(this, name, value, ...rest);
};
"""
LAST_SENT = """async () => { const b = window.__sent[window.__sent.length - 1]; const bm = await createImageBitmap(b);
  return [b.type, b.size, bm.width, bm.height]; }"""
DIGIT_SETTLED = """() => document.querySelector('.result').getAttribute('aria-busy') === 'false'
  && !document.getElementById('photo-view').hidden"""
NUMBER_SETTLED = """() => document.querySelector('.number-answer').getAttribute('aria-busy') === 'false'
  && !document.getElementById('number-photo-view').hidden"""
SEEN_INK = """() => { const d = document.getElementById('model-input').getContext('2d').getImageData(0, 0, 28, 28).data;
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }"""


def photo_of(digit: int, seed: int, size: tuple[int, int] = (3200, 2400), fmt: str = "JPEG") -> bytes:
    """A picture of one handwritten digit: the digit (drawn at 280 px, scaled up to 70 % of the height) on
    greyish, grainy paper, left of centre, as a photo would frame it."""
    rng = np.random.default_rng(seed)
    side = int(0.7 * size[1])
    ink = render(digit, rng, "canvas").resize((side, side), Image.Resampling.BICUBIC)
    paper = Image.fromarray(np.uint8(np.clip(rng.normal(225, 10, size[::-1]), 0, 255)), "L")
    mask = Image.eval(ink, lambda v: 255 - v)
    paper.paste(Image.new("L", ink.size, 30), (size[0] // 2 - side * 5 // 7, (size[1] - side) // 2), mask)
    buf = io.BytesIO()
    paper.convert("RGB").save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("photo")
    with cli_server(tmp, "--db", f"sqlite:///{tmp / 'feedback.db'}") as s:
        yield s.url


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})
    page = ctx.new_page()
    page.add_init_script(INIT)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text
            else None)
    page.goto(server + "/")
    page.wait_for_function("() => document.getElementById('canvas').width > 0")
    yield page
    assert not errors, errors
    assert page.evaluate("window.__csp") == []
    ctx.close()


def check_box(page, view: str, answer: dict) -> None:
    """A box over the photo when the server says where the digit is (older servers do not: then none)."""
    boxes = page.locator(f"#{view}-boxes .digit-box")
    if answer.get("box"):
        assert boxes.count() == 1 and boxes.locator(".digit-box-label").text_content() == str(answer["digit"])
        shown, photo = boxes.bounding_box(), page.locator(f"#{view}-canvas").bounding_box()
        assert photo["x"] - 1 <= shown["x"] and shown["x"] + shown["width"] <= photo["x"] + photo["width"] + 1
        assert shown["width"] > 0.1 * photo["width"]
    else:
        assert boxes.count() == 0


def test_a_phone_photo_is_scaled_down_sent_and_read_with_the_28x28_and_feedback(page, server):
    photo = photo_of(3, seed=2)
    assert len(photo) > 2 * 2**20  # a 7.7-megapixel JPEG of a few MB, as phones save them
    page.locator("#photo-view").wait_for(state="hidden")
    label = page.locator("label[for=photo]")
    assert label.text_content().strip() == "Upload or take a photo"
    field = page.locator("input#photo")
    assert field.get_attribute("accept") == "image/*" and field.get_attribute("capture") == "environment"
    with page.expect_response("**/api/predict") as res:
        field.set_input_files(files=[{"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    kind, size, width, height = page.evaluate(LAST_SENT)
    assert (kind, width, height) == ("image/jpeg", 1600, 1200) and size < len(photo) / 3  # scaled down first
    answer = res.value.json()
    page.wait_for_function(DIGIT_SETTLED)
    assert answer["digit"] == 3
    assert page.locator("#prediction").text_content() == "3"
    assert page.locator("#canvas").is_hidden() and page.locator("#photo-canvas").is_visible()
    assert page.locator("#clear").is_hidden()  # undo/clear act on the pad, which is away
    assert page.evaluate("document.getElementById('photo-canvas').width") == 1600
    assert page.evaluate(SEEN_INK) > 20  # the 28x28 the model saw is drawn
    check_box(page, "photo", answer)
    # The feedback control works for a photo as for a drawing.
    page.locator("#feedback-right").click()
    page.wait_for_function("() => document.getElementById('feedback').dataset.sent === '3'")
    assert httpx.get(f"{server}/api/stats").json()["feedback"] >= 1
    # Back to drawing: the photo and its answer go away.
    page.locator("#photo-close").click()
    assert page.locator("#photo-view").is_hidden() and page.locator("#canvas").is_visible()
    assert page.locator("#prediction").text_content() == "–" and page.locator("#clear").is_visible()


def test_the_box_the_server_gives_is_drawn_where_it_says_on_the_photo(page):
    """The API's `box` is in the sent picture's pixels; the page draws it at the same place on the photo,
    whatever size the photo is shown at (the answer is the real server's, with a box of known place)."""
    def with_box(route):
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "box": [400, 300, 200, 450]})

    page.route("**/api/predict", with_box)
    page.locator("input#photo").set_input_files(
        files=[{"name": "a.jpg", "mimeType": "image/jpeg", "buffer": photo_of(5, seed=3, size=(1200, 900))}])
    page.wait_for_function(DIGIT_SETTLED)
    assert page.locator("#prediction").text_content() == "5"
    photo = page.locator("#photo-canvas").bounding_box()
    box = page.locator("#photo-boxes .digit-box").bounding_box()
    k = photo["width"] / 1200  # sent at its own size: it is under 1600 px
    assert box["x"] - photo["x"] == pytest.approx(400 * k, abs=3)
    assert box["y"] - photo["y"] == pytest.approx(300 * k, abs=3)
    assert (box["width"], box["height"]) == (pytest.approx(200 * k, abs=3), pytest.approx(450 * k, abs=3))
    assert page.locator("#photo-boxes .digit-box-label").text_content() == "5"


def drop_or_paste(page, target: str, data: bytes, mime: str, event: str) -> None:
    """Dispatch a real DragEvent (drop) or ClipboardEvent (paste) carrying the file, as the browser would."""
    page.evaluate(
        """([target, b64, mime, event]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], "picture", { type: mime }));
          const el = document.querySelector(target);
          if (event === "drop") {
            el.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
            el.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
          } else {
            el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
          }
        }""",
        [target, base64.b64encode(data).decode(), mime, event],
    )


@pytest.mark.parametrize(("event", "digit"), [("drop", 7), ("paste", 4)])
def test_a_picture_dropped_or_pasted_is_read(page, event, digit):
    png = photo_of(digit, seed=5, size=(1200, 900), fmt="PNG")
    with page.expect_response("**/api/predict") as res:
        drop_or_paste(page, "#digit-section .pad" if event == "drop" else "body", png, "image/png", event)
    page.wait_for_function(DIGIT_SETTLED)
    assert page.locator("#prediction").text_content() == str(digit)
    check_box(page, "photo", res.value.json())
    assert not page.locator("#digit-section .pad").evaluate("e => e.classList.contains('dropping')")


def test_a_photo_of_a_number_is_read_with_a_box_per_digit(page):
    page.locator("#mode-number").click()
    buf = io.BytesIO()
    draw_number("2024", seed=1).save(buf, "PNG")
    field = page.locator("input#number-photo")
    assert field.get_attribute("accept") == "image/*" and field.get_attribute("capture") == "environment"
    with page.expect_response("**/api/predict/number") as res:
        field.set_input_files(files=[{"name": "number.png", "mimeType": "image/png", "buffer": buf.getvalue()}])
    page.wait_for_function(NUMBER_SETTLED)
    answer = res.value.json()
    assert page.locator("#number").text_content() == "2024" == answer["number"]
    labels = page.locator("#number-photo-boxes .digit-box-label").all_text_contents()
    assert "".join(labels) == "2024"  # one box per digit, over the photo
    photo = page.locator("#number-photo-canvas").bounding_box()
    xs = []
    for i in range(4):
        b = page.locator("#number-photo-boxes .digit-box").nth(i).bounding_box()
        assert photo["x"] - 1 <= b["x"] and b["x"] + b["width"] <= photo["x"] + photo["width"] + 1
        xs.append(b["x"])
    assert xs == sorted(xs)
    assert page.locator("#number-boxes .digit-box").count() == 0  # none over the (hidden) pad
    items = page.locator("#number-digits li")
    assert items.count() == 4
    has_input = all("input" in d for d in answer["digits"])
    assert page.locator("#number-digits li canvas").count() == (4 if has_input else 0)
    # A second picture, pasted, replaces the first.
    buf = io.BytesIO()
    draw_number("357", seed=6).save(buf, "PNG")
    with page.expect_response("**/api/predict/number"):
        drop_or_paste(page, "body", buf.getvalue(), "image/png", "paste")
    page.wait_for_function("() => document.getElementById('number').textContent === '357'")
    assert page.locator("#number-photo-boxes .digit-box").count() == 3
    page.keyboard.press("Escape")  # back to the pad
    assert page.locator("#number-photo-view").is_hidden() and page.locator("#number-canvas").is_visible()


def test_a_file_the_server_refuses_shows_its_reason(page):
    with page.expect_response("**/api/predict") as res:
        page.locator("input#photo").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture at all"}])
    assert 400 <= res.value.status < 500
    detail = res.value.json()["detail"]
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    status = page.locator("#status").text_content()
    assert status.startswith("Could not read the picture") and detail in status
    assert page.locator("#prediction").text_content() == "–"
    assert page.locator("#photo-view").is_hidden()  # nothing the browser could show
