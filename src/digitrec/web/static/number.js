// digitrec page, beyond one digit: "number mode" (a wide pad read by /api/predict/number, with a box and a
// label over each digit found) and the saliency overlay on the 28x28 view (/api/explain).
// Plain script, no dependencies, no inline code (the page runs under a CSP without 'unsafe-inline').
"use strict";

(() => {
  const EXPORT_W = 840;        // the PNG sent to the server (3:1, as the pad); boxes come back in its pixels
  const EXPORT_H = 280;

  const $ = (id) => document.getElementById(id);
  const modeBtn = $("mode-number");
  const digitSection = $("digit-section");
  const numberSection = $("number-section");
  const boxesEl = $("number-boxes");
  const numberEl = $("number");
  const numberConfEl = $("number-confidence");
  const digitsEl = $("number-digits");
  const statusEl = $("number-status");
  const answerEl = numberSection.querySelector(".number-answer");

  const pct = (p) => `${(p * 100).toFixed(p >= 0.9995 || p < 0.0005 ? 0 : 1)}%`;

  // -- mode ---------------------------------------------------------------------------------------------
  let numberMode = false;

  function setMode(on) {
    numberMode = on;
    modeBtn.setAttribute("aria-pressed", String(on));
    digitSection.hidden = on;
    numberSection.hidden = !on;
    document.body.classList.toggle("number-mode", on);
    if (on) pad.fit();  // it was hidden: size it now
    if (on !== (location.hash === "#number")) history.replaceState(null, "", on ? "#number" : location.pathname);
  }
  modeBtn.addEventListener("click", () => setMode(!numberMode));

  // -- the wide pad (pad.js) ----------------------------------------------------------------------------
  let version = 0;            // bumped on every change; answers for older drawings are dropped

  const pad = createPad($("number-canvas"), {
    pen: 0.07,
    exportWidth: EXPORT_W,
    exportHeight: EXPORT_H,
    undoButton: $("number-undo"),
    clearButton: $("number-clear"),
    placeholder: $("number-placeholder"),
    onChange(what) {
      if (what === "move") return;           // several strokes per digit: no live guesses mid-stroke
      version++;
      if (what !== "end") showBoxes([]);     // the old boxes no longer match the drawing
      if (what !== "start") request();       // a number is read when a stroke ends, and on undo/clear
    },
  });
  const strokes = pad.strokes;

  // Capture phase on window: in number mode these keys act on this pad, and the hidden digit pad
  // (app.js listens on document) never sees them.
  window.addEventListener("keydown", (e) => {
    if (e.altKey && !e.ctrlKey && !e.metaKey && e.key.toLowerCase() === "n") {
      e.preventDefault();
      setMode(!numberMode);
      return;
    }
    if (!numberMode) return;
    if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") {
      e.preventDefault();
      e.stopPropagation();
      pad.undo();
    } else if (e.key === "Escape") {
      e.stopPropagation();
      pad.clear();
    }
  }, true);

  // -- reading the number: one request in flight; a change meanwhile sends again when it returns -------
  let inFlight = false;
  let pending = false;

  function request() {
    if (!strokes.length) {
      pending = false;
      show(null, true);
      return;
    }
    answerEl.setAttribute("aria-busy", "true");
    if (inFlight) {
      pending = true;
      return;
    }
    send();
  }

  async function send() {
    inFlight = true;
    const sentVersion = version;
    try {
      const res = await fetch("/api/predict/number", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ image: pad.exportPNG() }),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.detail || `the server answered ${res.status}`);
      if (strokes.length && sentVersion === version) show(data, true);
    } catch (err) {
      statusEl.textContent = `Could not read the number: ${err.message}`;
      statusEl.classList.add("error");
    } finally {
      inFlight = false;
      if (pending) {
        pending = false;
        request();
      } else {
        answerEl.setAttribute("aria-busy", "false");
      }
    }
  }

  // `onPad`: the boxes go over the pad (a drawing); a photo's are drawn over the photo by photo.js.
  function show(data, final, onPad = true) {
    const digits = data ? data.digits || [] : [];
    numberEl.textContent = data && data.number ? data.number : "–";
    numberEl.dataset.final = String(final);
    numberConfEl.textContent = data && data.number ? `${pct(data.confidence)} sure` : "";
    digitsEl.replaceChildren(...digits.map((d) => {
      const li = document.createElement("li");
      if (Array.isArray(d.input)) li.append(seenCanvas(d.input));
      li.append(`${d.digit} · ${pct(d.confidence)}`);
      return li;
    }));
    showBoxes(onPad ? digits : []);
    statusEl.classList.remove("error");
    statusEl.textContent = data && !data.number ? "No digits found: write them a bit bigger or bolder." : "";
  }

  // The 28x28 the model saw for one digit (white on black, as MNIST).
  function seenCanvas(input) {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "The 28 by 28 image the model saw");
    const c = canvas.getContext("2d");
    const img = c.createImageData(28, 28);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = Math.round(Math.min(1, Math.max(0, (input[y] || [])[x] || 0)) * 255);
        const i = (y * 28 + x) * 4;
        img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
        img.data[i + 3] = 255;
      }
    }
    c.putImageData(img, 0, 0);
    return canvas;
  }

  // -- photos (photo.js): the pad is cleared and the photo's number shown --------------------------------
  document.addEventListener("digitrec:photo", (e) => {
    const { mode, phase, data, message } = e.detail;
    if (mode !== "number") return;
    if (phase === "start" || phase === "close") {
      pad.clear();
      if (phase === "start") {
        answerEl.setAttribute("aria-busy", "true");
        statusEl.classList.remove("error");
        statusEl.textContent = "Reading the picture…";
      }
      return;
    }
    answerEl.setAttribute("aria-busy", "false");
    if (phase === "error") {
      show(null, true, false);
      statusEl.textContent = `Could not read the picture: ${message}`;
      statusEl.classList.add("error");
    } else {
      show(data, true, false);
    }
  });

  function showBoxes(digits) {
    // Boxes are in the exported PNG's pixels; as percentages they fit the pad at any size.
    boxesEl.replaceChildren(...digits.map((d) => {
      const [x, y, w, h] = d.box;
      const box = document.createElement("div");
      box.className = "digit-box";
      box.style.left = `${(100 * x) / EXPORT_W}%`;
      box.style.top = `${(100 * y) / EXPORT_H}%`;
      box.style.width = `${(100 * w) / EXPORT_W}%`;
      box.style.height = `${(100 * h) / EXPORT_H}%`;
      const label = document.createElement("span");
      label.className = "digit-box-label";
      label.textContent = String(d.digit);
      box.append(label);
      return box;
    }));
  }

  // -- saliency overlay on the 28x28 view ---------------------------------------------------------------
  const salBtn = $("saliency-toggle");
  const salCanvas = $("saliency");
  const sal = salCanvas.getContext("2d");
  let salOn = false;
  let latest = null;          // the last answer on screen (app.js's "digitrec:prediction" event)
  let salSeq = 0;             // answers for older drawings are dropped

  // The same dark-red -> yellow ramp as explain.py's heat maps.
  const STOPS = [[90, 0, 20], [200, 30, 30], [255, 140, 0], [255, 230, 40]];
  function ramp(v) {
    const pos = Math.min(1, Math.max(0, v)) * (STOPS.length - 1);
    const i = Math.min(Math.floor(pos), STOPS.length - 2);
    const f = pos - i;
    return STOPS[i].map((c, k) => Math.round(c * (1 - f) + STOPS[i + 1][k] * f));
  }

  function drawSaliency(map) {
    const img = sal.createImageData(28, 28);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = map ? map[y][x] : 0;
        const [r, g, b] = ramp(v);
        const i = (y * 28 + x) * 4;
        img.data[i] = r;
        img.data[i + 1] = g;
        img.data[i + 2] = b;
        img.data[i + 3] = Math.round(220 * Math.min(1, Math.max(0, v)));
      }
    }
    sal.putImageData(img, 0, 0);
  }

  async function explain() {
    const seq = ++salSeq;
    const input = latest && latest.final && latest.data ? latest.data.input : null;
    if (!salOn || !input) {
      drawSaliency(null);
      salCanvas.dataset.state = salOn ? "empty" : "off";
      return;
    }
    salCanvas.dataset.state = "loading";
    try {
      // The 28x28 image the model saw goes back as pixels: the explanation is of exactly that image.
      const res = await fetch("/api/explain", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pixels: input }),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.detail || `the server answered ${res.status}`);
      if (seq !== salSeq) return;
      drawSaliency(data.digit === null ? null : data.saliency);
      salCanvas.dataset.state = data.digit === null ? "empty" : "shown";
    } catch {
      if (seq === salSeq) {
        drawSaliency(null);
        salCanvas.dataset.state = "error";
      }
    }
  }

  function setSaliency(on) {
    salOn = on;
    salBtn.setAttribute("aria-pressed", String(on));
    salBtn.textContent = on ? "Hide what mattered" : "What mattered?";
    salCanvas.hidden = !on;
    explain();
  }
  salBtn.addEventListener("click", () => setSaliency(!salOn));

  document.addEventListener("digitrec:prediction", (e) => {
    latest = e.detail;
    if (salOn) explain();
  });

  if (location.hash === "#number") setMode(true);
})();
