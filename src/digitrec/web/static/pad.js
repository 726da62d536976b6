// digitrec drawing pad, shared by the digit pad (app.js) and the number pad (number.js): pointer input,
// stroke storage, drawing, undo/clear, resize fitting and the PNG export. What to do with the drawing
// (when to ask the server, what to show) stays with the callers, through `onChange`.
// Plain script, no dependencies, no inline code (the page runs under a CSP without 'unsafe-inline').
// Loaded before app.js and number.js (defer keeps the order); defines the global `createPad`.
"use strict";

/**
 * Make `canvas` a drawing pad.
 *
 * opts.pen          pen width as a fraction of the pad's height: the same look at every size
 * opts.exportWidth,
 * opts.exportHeight size of the PNG from exportPNG()
 * opts.square       size the backing store from the width alone (height = width)
 * opts.undoButton, opts.clearButton, opts.placeholder
 *                   enabled / hidden while there is ink
 * opts.onChange(what) called after every change to the ink, what being "start" (a stroke began),
 *                   "move" (points added to it), "end" (it ended), "undo" or "clear"
 *
 * Returns { strokes, undo, clear, exportPNG, fit, scheduleRedraw }.
 */
function createPad(canvas, opts) {
  const { pen, exportWidth, exportHeight, square = false, undoButton, clearButton, placeholder } = opts;
  const onChange = opts.onChange || (() => {});
  const ctx = canvas.getContext("2d");

  // Strokes are kept as points in unit coordinates (x / width, y / height), so the drawing survives
  // resizes, undo is a redraw without the last stroke, and the exported PNG is rendered at a fixed size.
  const strokes = [];
  let activePointer = null;

  function pathStroke(c, pts, w, h, color) {
    c.strokeStyle = color;
    c.fillStyle = color;
    c.lineWidth = pen * h;
    c.lineCap = "round";
    c.lineJoin = "round";
    const p = pts.map(([x, y]) => [x * w, y * h]);
    c.beginPath();
    if (p.length === 1) {  // a tap: a dot
      c.arc(p[0][0], p[0][1], c.lineWidth / 2, 0, 2 * Math.PI);
      c.fill();
      return;
    }
    // Quadratic curves through the midpoints: smooth strokes from jittery pointer samples.
    c.moveTo(p[0][0], p[0][1]);
    for (let i = 1; i < p.length - 1; i++) {
      c.quadraticCurveTo(p[i][0], p[i][1], (p[i][0] + p[i + 1][0]) / 2, (p[i][1] + p[i + 1][1]) / 2);
    }
    c.lineTo(p[p.length - 1][0], p[p.length - 1][1]);
    c.stroke();
  }

  let frame = 0;
  function redraw() {
    frame = 0;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const ink = getComputedStyle(canvas).color;  // the theme's ink colour
    for (const s of strokes) pathStroke(ctx, s, canvas.width, canvas.height, ink);
  }
  // Pointer events come faster than frames: draw at most once per frame.
  const scheduleRedraw = () => { if (!frame) frame = requestAnimationFrame(redraw); };

  function fit() {
    // Backing store at device resolution for crisp ink on high-DPI screens.
    const r = canvas.getBoundingClientRect();
    if (!square && !r.width) return;  // a hidden wide pad keeps its size until it is shown
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr));
    const h = square ? w : Math.max(1, Math.round(r.height * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    redraw();
  }
  new ResizeObserver(fit).observe(canvas);

  function exportPNG() {
    // Dark ink on white at a fixed size, whatever the theme or screen: preprocessing handles the rest.
    const off = document.createElement("canvas");
    off.width = exportWidth;
    off.height = exportHeight;
    const c = off.getContext("2d");
    c.fillStyle = "#ffffff";
    c.fillRect(0, 0, exportWidth, exportHeight);
    for (const s of strokes) pathStroke(c, s, exportWidth, exportHeight, "#000000");
    return off.toDataURL("image/png");
  }

  function point(e) {
    const r = canvas.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((e.clientX - r.left) / r.width), clamp((e.clientY - r.top) / r.height)];
  }

  // The controls follow whether there is any ink.
  function syncControls() {
    const empty = strokes.length === 0;
    undoButton.disabled = empty;
    clearButton.disabled = empty;
    placeholder.classList.toggle("hidden", !empty);
    canvas.classList.toggle("has-ink", !empty);
  }

  canvas.addEventListener("pointerdown", (e) => {
    // One pointer at a time (a palm or second finger does not start a stroke); mouse: left button only.
    if (activePointer !== null || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    activePointer = e.pointerId;
    try { canvas.setPointerCapture(e.pointerId); } catch { /* synthetic events have no capture */ }
    strokes.push([point(e)]);
    syncControls();
    scheduleRedraw();
    onChange("start");
  });

  canvas.addEventListener("pointermove", (e) => {
    if (e.pointerId !== activePointer) return;
    e.preventDefault();
    // Coalesced events: every sample the device gave, not just one per frame, for smoother curves.
    const stroke = strokes[strokes.length - 1];
    const samples = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of samples.length ? samples : [e]) stroke.push(point(ev));
    scheduleRedraw();
    onChange("move");
  });

  function endStroke(e) {
    if (e.pointerId !== activePointer) return;
    activePointer = null;
    scheduleRedraw();
    onChange("end");
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
    syncControls();
    redraw();
    onChange("undo");
  }

  // Also when already empty: callers rely on "clear" to reset what they show.
  function clear() {
    strokes.length = 0;
    activePointer = null;
    syncControls();
    redraw();
    onChange("clear");
  }

  undoButton.addEventListener("click", undo);
  clearButton.addEventListener("click", clear);
  syncControls();

  return { strokes, undo, clear, exportPNG, fit, scheduleRedraw };
}
