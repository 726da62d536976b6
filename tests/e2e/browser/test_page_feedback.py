"""The page's "that's wrong -> it was _" control in a real Chromium, under the server's strict CSP: draw a
digit, correct it, and the server's /api/stats counts the feedback. No CSP violation may happen."""

from __future__ import annotations

import httpx
import pytest

from digitrec.testing.servers import cli_server

pytestmark = pytest.mark.browser

VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""


def draw_one(page, lift: bool = True) -> None:
    box = page.locator("#canvas").bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(x + i * 0.3, box["y"] + box["height"] * (0.15 + 0.035 * i))
    if lift:
        page.mouse.up()


def test_correcting_a_prediction_from_the_page(browser, tmp_path):
    with cli_server(tmp_path, "--db", f"sqlite:///{tmp_path / 'feedback.db'}") as s:
        page = browser.new_page()
        page.add_init_script(VIOLATIONS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(s.url + "/")
        assert page.locator("#feedback").is_hidden()  # nothing to correct yet
        draw_one(page)
        page.wait_for_function("() => document.getElementById('prediction').dataset.final === 'true'"
                               " && !document.getElementById('feedback').hidden")
        shown = page.locator("#prediction").text_content()
        wrong_label = "7" if shown != "7" else "1"
        page.locator("#feedback-wrong").click()
        page.locator(f'#feedback-digits button[data-label="{wrong_label}"]').click()
        page.wait_for_function("() => document.getElementById('feedback').dataset.sent !== undefined")
        assert wrong_label in page.locator("#feedback-status").text_content()
        stats = httpx.get(f"{s.url}/api/stats").json()
        assert stats["feedback"] == 1 and stats["feedback_accuracy"] == 0.0
        # The keyboard works too: a new drawing, then Tab to "Right" and Enter.
        page.locator("#clear").click()
        draw_one(page)
        page.wait_for_function("() => document.getElementById('prediction').dataset.final === 'true'"
                               " && !document.getElementById('feedback').hidden"
                               " && document.getElementById('feedback').dataset.sent === undefined")
        page.locator("#feedback-right").focus()
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('feedback').dataset.sent !== undefined")
        assert httpx.get(f"{s.url}/api/stats").json()["feedback"] == 2
        assert page.evaluate("window.__csp") == [] and errors == []


def test_a_pause_mid_stroke_gives_a_live_guess_not_a_final_answer(browser, tmp_path):
    """Holding the pen still mid-stroke lets a live guess come back for exactly the ink on screen. It is still
    not the final answer: the stroke is not over, so the page must not ask "is it right?" about it (feedback
    given then would be for an answer the pen's lifting replaces a moment later)."""
    with cli_server(tmp_path, "--db", f"sqlite:///{tmp_path / 'feedback.db'}") as s:
        page = browser.new_page()
        page.goto(s.url + "/")
        draw_one(page, lift=False)
        # The pen rests: the throttled live request goes out and its answer (for this very ink) comes back.
        page.wait_for_function("() => document.getElementById('prediction').textContent !== '–'"
                               " && document.querySelector('.result').getAttribute('aria-busy') === 'false'")
        assert page.locator("#prediction").get_attribute("data-final") == "false"
        assert page.locator("#feedback").is_hidden()
        page.mouse.up()
        page.wait_for_function("() => document.getElementById('prediction').dataset.final === 'true'"
                               " && !document.getElementById('feedback').hidden")
