// "That's wrong -> it was _": sends the true label of the answer on screen to POST /api/feedback.
// app.js announces each answer with a "digitrec:prediction" event; the controls are built here, so the
// page's markup only holds an empty #feedback. No inline code (the page runs under a strict CSP).
"use strict";

(() => {
  const box = document.getElementById("feedback");
  if (!box) return;
  let current = null;           // the final answer on screen: {id, digit}

  const el = (tag, attrs = {}, text = "") => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  };

  const ask = el("div", { class: "feedback-ask" });
  const right = el("button", { type: "button", class: "btn btn-small", id: "feedback-right" }, "✓ Right");
  const wrong = el("button", { type: "button", class: "btn btn-small", id: "feedback-wrong",
                               "aria-expanded": "false", "aria-controls": "feedback-digits" }, "✗ That's wrong");
  ask.append(el("span", { class: "label" }, "Is it right?"), right, wrong);
  const digits = el("div", { class: "feedback-digits", id: "feedback-digits", role: "group",
                             "aria-label": "It was" }, "");
  digits.hidden = true;
  digits.append(el("span", { class: "label" }, "It was"));
  for (let d = 0; d <= 9; d++) {
    digits.append(el("button", { type: "button", class: "btn btn-digit", "data-label": String(d),
                                 "aria-label": `It was ${d}` }, String(d)));
  }
  const status = el("p", { class: "feedback-status", id: "feedback-status", role: "status", "aria-live": "polite" });
  box.append(ask, digits, status);

  function reset(answer) {
    current = answer;
    box.hidden = !answer;
    digits.hidden = true;
    wrong.setAttribute("aria-expanded", "false");
    for (const b of box.querySelectorAll("button")) b.disabled = false;
    status.textContent = "";
  }

  async function send(label) {
    if (!current) return;
    const sent = current;
    for (const b of box.querySelectorAll("button")) b.disabled = true;
    try {
      const res = await fetch("/api/feedback", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: sent.id, label }),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.detail || `the server answered ${res.status}`);
      if (current !== sent) return;         // a newer drawing replaced it meanwhile
      digits.hidden = true;
      status.textContent = label === sent.digit ? "Thanks for confirming." : `Thanks: recorded as ${label}.`;
      box.dataset.sent = String(label);
    } catch (err) {
      status.textContent = `Feedback not saved: ${err.message}`;
      for (const b of box.querySelectorAll("button")) b.disabled = false;
    }
  }

  document.addEventListener("digitrec:prediction", (e) => {
    const { data, final } = e.detail || {};
    if (!final) return;                     // live answers while drawing come and go: ask about the last one
    delete box.dataset.sent;
    reset(data && data.id && data.digit !== null ? { id: data.id, digit: data.digit } : null);
  });
  right.addEventListener("click", () => current && send(current.digit));
  wrong.addEventListener("click", () => {
    digits.hidden = !digits.hidden;
    wrong.setAttribute("aria-expanded", String(!digits.hidden));
    if (!digits.hidden) digits.querySelector("button").focus();
  });
  digits.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-label]");
    if (b) send(Number(b.dataset.label));
  });
})();
