// digitrec drawing page: pointer-event drawing, live throttled prediction, probability bars.
// Plain script, no dependencies, no inline code (the page runs under a CSP without 'unsafe-inline').
"use strict";

(() => {
  const PEN = 0.075;          // pen width as a fraction of the canvas side: same look at every size
  const EXPORT_SIZE = 280;    // the PNG sent to the server: small to encode and upload, plenty for 28x28
  const THROTTLE_MS = 150;    // at most one live prediction per this interval while drawing

  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const placeholder = document.getElementById("placeholder");
  const undoBtn = document.getElementById("undo");
  const clearBtn = document.getElementById("clear");
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

  // Strokes are kept as points in unit coordinates (0..1), so the drawing survives resizes, undo is a
  // redraw without the last stroke, and the exported PNG is rendered at a fixed size.
  const strokes = [];
  let activePointer = null;
  let version = 0;            // bumped on every change; answers for older drawings are not shown as final

  // -- drawing ----------------------------------------------------------------------------------------
  function pathStroke(c, pts, size, color) {
    c.strokeStyle = color;
    c.fillStyle = color;
    c.lineWidth = PEN * size;
    c.lineCap = "round";
    c.lineJoin = "round";
    const p = pts.map(([x, y]) => [x * size, y * size]);
    if (p.length === 1) {
      c.beginPath();
      c.arc(p[0][0], p[0][1], c.lineWidth / 2, 0, 2 * Math.PI);
      c.fill();
      return;
    }
    // Quadratic curves through the midpoints: smooth strokes from jittery pointer samples.
    c.beginPath();
    c.moveTo(p[0][0], p[0][1]);
    for (let i = 1; i < p.length - 1; i++) {
      const mx = (p[i][0] + p[i + 1][0]) / 2;
      const my = (p[i][1] + p[i + 1][1]) / 2;
      c.quadraticCurveTo(p[i][0], p[i][1], mx, my);
    }
    const last = p[p.length - 1];
    c.lineTo(last[0], last[1]);
    c.stroke();
  }

  let frame = 0;
  function redraw() {
    frame = 0;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const ink = getComputedStyle(canvas).color;
    for (const s of strokes) pathStroke(ctx, s, canvas.width, ink);
  }
  const scheduleRedraw = () => { if (!frame) frame = requestAnimationFrame(redraw); };

  function fitCanvas() {
    // Backing store at device resolution for crisp ink on high-DPI screens.
    const side = Math.max(1, Math.round(canvas.getBoundingClientRect().width * (window.devicePixelRatio || 1)));
    if (canvas.width !== side) {
      canvas.width = side;
      canvas.height = side;
    }
    redraw();
  }
  new ResizeObserver(fitCanvas).observe(canvas);
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener?.("change", scheduleRedraw);

  function exportPNG() {
    // Dark ink on white at a fixed size, whatever the theme or screen: preprocessing handles the rest.
    const off = document.createElement("canvas");
    off.width = EXPORT_SIZE;
    off.height = EXPORT_SIZE;
    const c = off.getContext("2d");
    c.fillStyle = "#ffffff";
    c.fillRect(0, 0, EXPORT_SIZE, EXPORT_SIZE);
    for (const s of strokes) pathStroke(c, s, EXPORT_SIZE, "#000000");
    return off.toDataURL("image/png");
  }

  function point(e) {
    const r = canvas.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((e.clientX - r.left) / r.width), clamp((e.clientY - r.top) / r.height)];
  }

  function changed() {
    version++;
    const empty = strokes.length === 0;
    undoBtn.disabled = empty;
    clearBtn.disabled = empty;
    placeholder.classList.toggle("hidden", !empty);
    canvas.classList.toggle("has-ink", !empty);
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (activePointer !== null || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    activePointer = e.pointerId;
    try { canvas.setPointerCapture(e.pointerId); } catch { /* synthetic events have no capture */ }
    strokes.push([point(e)]);
    changed();
    scheduleRedraw();
    requestPrediction(false);
  });

  canvas.addEventListener("pointermove", (e) => {
    if (e.pointerId !== activePointer) return;
    e.preventDefault();
    const stroke = strokes[strokes.length - 1];
    const samples = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of samples.length ? samples : [e]) stroke.push(point(ev));
    version++;
    scheduleRedraw();
    requestPrediction(false);
  });

  function endStroke(e) {
    if (e.pointerId !== activePointer) return;
    activePointer = null;
    version++;
    scheduleRedraw();
    requestPrediction(true);  // the final answer, right away
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
  canvas.addEventListener("lostpointercapture", endStroke);
  // Belt and braces for browsers that ignore touch-action: a finger on the pad never scrolls the page.
  canvas.addEventListener("touchstart", (e) => e.preventDefault(), { passive: false });
  canvas.addEventListener("touchmove", (e) => e.preventDefault(), { passive: false });

  function undo() {
    if (!strokes.length) return;
    strokes.pop();
    activePointer = null;
    changed();
    redraw();
    requestPrediction(true);
  }

  function clear() {
    strokes.length = 0;
    activePointer = null;
    changed();
    redraw();
    requestPrediction(true);
  }

  undoBtn.addEventListener("click", undo);
  clearBtn.addEventListener("click", clear);
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") {
      e.preventDefault();
      undo();
    } else if (e.key === "Escape") {
      clear();
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
    lastSent = performance.now();
    const sentVersion = version;
    try {
      const res = await fetch("/api/predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ image: exportPNG() }),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.detail || `the server answered ${res.status}`);
      setStatus("");  // before showResult, which may say why there is no digit
      if (strokes.length) showResult(data, sentVersion === version);
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

  changed();
  setBusy(false);
  drawSeen(null);
  loadModelInfo();
})();
