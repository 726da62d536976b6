// digitrec drawing page: pointer-event drawing, live throttled prediction, probability bars; photos (photo.js)
// land here too.
// Plain script, no dependencies, no inline code (the page runs under a CSP without 'unsafe-inline').
"use strict";

(() => {
  const THROTTLE_MS = 150;    // at most one live prediction per this interval while drawing

  const predictionEl = document.getElementById("prediction");
  const confidenceEl = document.getElementById("confidence");
  const statusEl = document.getElementById("status");
  const resultEl = document.querySelector(".result");
  const seen = document.getElementById("model-input").getContext("2d");
  const bars = Array.from(document.querySelectorAll("#probabilities .bar")).map((li) => ({
    li,
    digit: Number(li.dataset.digit),
    fill: li.querySelector(".bar-fill"),
    value: li.querySelector(".bar-value"),
  }));

  let version = 0;            // bumped on every change; answers for older drawings are not shown as final
  let stroking = false;       // a stroke is under way: even an answer for the current ink is only a live guess

  // -- drawing (pad.js) -------------------------------------------------------------------------------
  const pad = createPad(document.getElementById("canvas"), {
    pen: 0.075,
    exportWidth: 280,         // the PNG sent to the server: small to encode and upload, plenty for 28x28
    exportHeight: 280,
    square: true,
    undoButton: document.getElementById("undo"),
    clearButton: document.getElementById("clear"),
    placeholder: document.getElementById("placeholder"),
    onChange(what) {
      version++;
      stroking = what === "start" || what === "move";
      // Mid-stroke: a throttled live guess; otherwise (stroke ended, undo, clear) the final answer, right away.
      requestPrediction(!stroking);
    },
  });
  const strokes = pad.strokes;
  // The ink is the theme's text colour: redraw when the theme flips.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener?.("change", pad.scheduleRedraw);

  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") {
      e.preventDefault();
      pad.undo();
    } else if (e.key === "Escape") {
      pad.clear();
    }
  });

  // -- prediction -------------------------------------------------------------------------------------
  // One request in flight at most; while drawing, at most one per THROTTLE_MS; at a stroke's end, at once
  // (or as soon as the request in flight returns).
  let inFlight = false;
  let pending = false;        // another prediction is wanted when the one in flight returns...
  let pendingNow = false;     // ...and it is a final one (stroke ended, undo, clear): do not throttle it
  let lastSent = -Infinity;
  let timer = 0;

  // aria-busy tells assistive technology (and the browser tests) that an answer is on its way.
  const setBusy = (busy) => resultEl.setAttribute("aria-busy", String(busy));

  function requestPrediction(now) {
    if (!strokes.length) {
      clearTimeout(timer);
      timer = 0;
      pending = pendingNow = false;
      showResult(null);
      if (!inFlight) setBusy(false);
      return;
    }
    setBusy(true);
    if (inFlight) {
      pending = true;
      pendingNow = pendingNow || now;
      return;
    }
    const wait = now ? 0 : THROTTLE_MS - (performance.now() - lastSent);
    if (wait > 0) {
      if (!timer) timer = setTimeout(() => { timer = 0; requestPrediction(true); }, wait);
      return;
    }
    clearTimeout(timer);
    timer = 0;
    send();
  }

  async function send() {
    inFlight = true;
    const sentVersion = version;
    try {
      // The PNG first, then the clock: encoding takes longer on a cold or busy page, and the throttle counts
      // from when a request leaves, not from when it began to be built.
      const body = JSON.stringify({ image: pad.exportPNG() });
      lastSent = performance.now();
      const res = await fetch("/api/predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.detail || `the server answered ${res.status}`);
      setStatus("");  // before showResult, which may say why there is no digit
      if (strokes.length) showResult(data, sentVersion === version && !stroking);
    } catch (err) {
      setStatus(`Could not get a prediction: ${err.message}`, true);
    } finally {
      inFlight = false;
      if (pending) {
        const now = pendingNow;
        pending = pendingNow = false;
        requestPrediction(now);
      } else if (!timer) {
        setBusy(false);
      }
    }
  }

  // Why the answer is "no digit" (the API's `reason`).
  const NO_DIGIT = {
    blank: "No digit found: draw a bit bigger or bolder.",
    not_digit_like: "That does not look like a digit: draw one digit, 0–9.",
    low_confidence: "Not sure which digit that is: try drawing it more clearly.",
  };

  const pct = (p) => `${(p * 100).toFixed(p >= 0.9995 || p < 0.0005 ? 0 : 1)}%`;

  function showResult(data, final = true) {
    const digit = data ? data.digit : null;
    const probs = data && digit !== null ? data.probabilities : new Array(10).fill(0);
    predictionEl.textContent = digit === null ? "–" : String(digit);
    confidenceEl.textContent = digit === null ? "–" : pct(data.confidence);
    for (const b of bars) {
      const p = probs[b.digit] || 0;
      b.fill.style.width = `${(p * 100).toFixed(1)}%`;
      b.value.textContent = pct(p);
      b.li.classList.toggle("top", b.digit === digit);
      b.li.setAttribute("aria-label", `${b.digit}: ${pct(p)}`);
    }
    predictionEl.dataset.final = String(final);
    drawSeen(data ? data.input : null);
    if (data && digit === null) setStatus(NO_DIGIT[data.reason] || NO_DIGIT.blank);
    // feedback.js offers "that's wrong -> it was _" for the answer on screen.
    document.dispatchEvent(new CustomEvent("digitrec:prediction", { detail: { data, final } }));
  }

  function drawSeen(input) {
    const img = seen.createImageData(28, 28);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = input ? Math.round(Math.min(1, Math.max(0, input[y][x])) * 255) : 0;
        const i = (y * 28 + x) * 4;
        img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
        img.data[i + 3] = 255;
      }
    }
    seen.putImageData(img, 0, 0);
  }

  function setStatus(text, error = false) {
    statusEl.textContent = text;
    statusEl.classList.toggle("error", error);
  }

  async function loadModelInfo() {
    try {
      const res = await fetch("/api/model");
      if (!res.ok) return;
      const m = await res.json();
      const acc = m.test_accuracy == null ? "" : ` · MNIST test accuracy ${(m.test_accuracy * 100).toFixed(2)}%`;
      document.getElementById("model-info").textContent =
        `Model ${m.name} ${m.version}${acc} · sha256 ${m.sha256.slice(0, 12)} · ONNX Runtime`;
    } catch { /* the footer keeps its default text */ }
  }

  // -- photos (photo.js): the pad is cleared and the photo's answer shown as a drawing's would be ----------
  document.addEventListener("digitrec:photo", (e) => {
    const { mode, phase, data, message } = e.detail;
    if (mode !== "digit") return;
    if (phase === "start" || phase === "close") {
      pad.clear();              // shows "no answer" (and cancels a drawing's answer on its way)
      if (phase === "start") {
        setBusy(true);
        setStatus("Reading the picture…");
      }
      return;
    }
    setBusy(false);
    if (phase === "error") {
      showResult(null);
      setStatus(`Could not read the picture: ${message}`, true);
    } else {
      setStatus("");
      showResult(data, true);
    }
  });

  setBusy(false);
  drawSeen(null);
  loadModelInfo();
})();
