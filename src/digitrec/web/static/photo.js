// digitrec page: photos and image files, in both modes. "Upload or take a photo" (a file input that opens the
// camera on a phone), drag-and-drop onto the pad's card, and paste. The picture is scaled down here (long side
// 1600 px, JPEG) so that a 12-megapixel phone photo fits the server's body limit and uploads quickly; it is
// shown with a box around each digit the server found. The answer goes to app.js (digit mode) or number.js
// (number mode) in a "digitrec:photo" event, so the 28x28 view, the bars and the feedback work as for drawings.
// Plain script, no dependencies, no inline code (the page runs under a CSP without 'unsafe-inline').
"use strict";

(() => {
  const MAX_SIDE = 1600;        // long side of what is sent: plenty to find digits, ~0.3-0.6 MB as JPEG
  const LOSSLESS_PIXELS = 1e6;  // a PNG up to this size goes back as PNG: no JPEG blur on small drawings
  const $ = (id) => document.getElementById(id);

  const MODES = {
    digit: { input: $("photo"), zone: $("digit-section").querySelector(".pad"), endpoint: "/api/predict",
             wrap: $("digit-section").querySelector(".canvas-wrap"), prefix: "photo" },
    number: { input: $("number-photo"), zone: $("number-section").querySelector(".number-pad"),
              endpoint: "/api/predict/number", wrap: $("number-section").querySelector(".number-wrap"),
              prefix: "number-photo" },
  };
  for (const m of Object.values(MODES)) {
    m.actions = m.zone.querySelector(".actions");  // undo/clear act on the pad: away while a photo is shown
    m.view = $(`${m.prefix}-view`);
    m.canvas = $(`${m.prefix}-canvas`);
    m.boxes = $(`${m.prefix}-boxes`);
    m.close = $(`${m.prefix}-close`);
    m.seq = 0;                  // answers for an older photo are dropped
  }

  const currentMode = () => (document.body.classList.contains("number-mode") ? "number" : "digit");
  const tell = (mode, detail) => document.dispatchEvent(new CustomEvent("digitrec:photo", { detail: { mode, ...detail } }));

  // The picture upright (EXIF orientation applied), at most MAX_SIDE on its long side, on white paper (a
  // transparent PNG's background would otherwise turn black), and the bytes to send. A format this browser
  // cannot decode (HEIC on most desktops) is sent as it is: the server's answer names the formats it reads.
  async function prepare(file) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch {
      return { blob: file, picture: null };
    }
    const k = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const picture = document.createElement("canvas");
    picture.width = Math.max(1, Math.round(bitmap.width * k));
    picture.height = Math.max(1, Math.round(bitmap.height * k));
    const c = picture.getContext("2d");
    c.fillStyle = "#ffffff";
    c.fillRect(0, 0, picture.width, picture.height);
    c.drawImage(bitmap, 0, 0, picture.width, picture.height);
    bitmap.close();
    const png = file.type === "image/png" && picture.width * picture.height <= LOSSLESS_PIXELS;
    const blob = await new Promise((resolve) => picture.toBlob(resolve, png ? "image/png" : "image/jpeg", 0.9));
    return { blob: blob || file, picture };
  }

  function showPicture(m, picture) {
    m.wrap.hidden = m.actions.hidden = true;
    m.view.hidden = false;
    m.boxes.replaceChildren();
    m.canvas.width = picture ? picture.width : 1;
    m.canvas.height = picture ? picture.height : 1;
    if (picture) m.canvas.getContext("2d").drawImage(picture, 0, 0);
    // As wide as the card allows, never taller than 60% of the viewport (CSSOM styles are allowed by the CSP).
    const aspect = m.canvas.width / m.canvas.height;
    m.view.querySelector(".photo-stack").style.width = `min(100%, ${(60 * aspect).toFixed(3)}vh)`;
  }

  // One box per digit found, in the sent picture's pixels; as percentages they fit the picture at any size.
  function showBoxes(m, found) {
    const w = m.canvas.width;
    const h = m.canvas.height;
    m.boxes.replaceChildren(...found.filter((d) => Array.isArray(d.box) && d.box.length === 4).map((d) => {
      const [x, y, bw, bh] = d.box;
      const box = document.createElement("div");
      box.className = "digit-box";
      box.style.left = `${(100 * x) / w}%`;
      box.style.top = `${(100 * y) / h}%`;
      box.style.width = `${(100 * bw) / w}%`;
      box.style.height = `${(100 * bh) / h}%`;
      const label = document.createElement("span");
      label.className = "digit-box-label";
      label.textContent = d.digit === null || d.digit === undefined ? "?" : String(d.digit);
      box.append(label);
      return box;
    }));
  }

  async function read(mode, file) {
    const m = MODES[mode];
    if (!file) return;
    const seq = ++m.seq;
    tell(mode, { phase: "start" });
    try {
      const { blob, picture } = await prepare(file);
      if (seq !== m.seq) return;
      if (picture) showPicture(m, picture);
      else hideView(m);
      const body = new FormData();
      body.append("file", blob, picture ? (blob.type === "image/png" ? "photo.png" : "photo.jpg") : file.name);
      const res = await fetch(m.endpoint, { method: "POST", body });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(typeof data.detail === "string" ? data.detail : `the server answered ${res.status}`);
      if (seq !== m.seq) return;
      showBoxes(m, mode === "number" ? data.digits || [] : data.digit === null ? [] : [data]);
      tell(mode, { phase: "result", data });
    } catch (err) {
      if (seq === m.seq) tell(mode, { phase: "error", message: err.message });
    }
  }

  function hideView(m) {
    m.view.hidden = true;
    m.wrap.hidden = m.actions.hidden = false;
    m.boxes.replaceChildren();
  }

  // Back to the pad: the photo and its answer go away.
  function close(mode) {
    const m = MODES[mode];
    if (m.view.hidden) return;
    m.seq++;
    hideView(m);
    tell(mode, { phase: "close" });
  }

  const imageIn = (list) => Array.from(list || []).find((f) => f.type.startsWith("image/")) || (list || [])[0];

  for (const [mode, m] of Object.entries(MODES)) {
    m.input.addEventListener("change", () => {
      const file = m.input.files[0];
      m.input.value = "";       // choosing the same file again is a change too
      read(mode, file);
    });
    m.close.addEventListener("click", () => close(mode));
    m.zone.addEventListener("dragover", (e) => {
      if (!e.dataTransfer || !Array.from(e.dataTransfer.types).includes("Files")) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      m.zone.classList.add("dropping");
    });
    m.zone.addEventListener("dragleave", (e) => {
      if (!m.zone.contains(e.relatedTarget)) m.zone.classList.remove("dropping");
    });
    m.zone.addEventListener("drop", (e) => {
      m.zone.classList.remove("dropping");
      const file = imageIn(e.dataTransfer && e.dataTransfer.files);
      if (!file) return;
      e.preventDefault();
      read(mode, file);
    });
  }

  // Paste anywhere on the page: an image on the clipboard is read in the mode on screen.
  document.addEventListener("paste", (e) => {
    const files = e.clipboardData ? Array.from(e.clipboardData.files) : [];
    const file = files.find((f) => f.type.startsWith("image/"));
    if (!file) return;
    e.preventDefault();
    read(currentMode(), file);
  });

  // Escape (which clears the pad) also puts the photo away. Capture phase on window: number.js stops it there.
  window.addEventListener("keydown", (e) => {
    if (e.key === "Escape") close(currentMode());
  }, true);
})();
