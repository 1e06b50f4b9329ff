// delivery-exec: the driver's phone page. The token in the URL is the only credential.
"use strict";
const base = location.pathname.replace(/\/$/, "");
const stopEl = document.getElementById("stop");
const msg = document.getElementById("msg");
const canvas = document.getElementById("sig");
const ctx = canvas.getContext("2d");
let drawn = false;
let down = false;

function text(el, value) { el.textContent = value; }

async function load() {
  const r = await fetch(base + "/next", {cache: "no-store"});
  const body = await r.json();
  if (!r.ok) { text(stopEl, body.error ? body.error.message : "error"); return; }
  const s = body.next;
  if (!s) { stopEl.dataset.order = ""; text(stopEl, "Round complete"); return; }
  stopEl.dataset.order = s.order;
  const eta = s.eta_ts ? new Date(s.eta_ts * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}) : s.planned;
  text(stopEl, `${s.order} (${s.kind}) — ETA ${eta}, window ${s.window || "any"}, ${s.weight_kg} kg` +
    (s.pin_required ? " — PIN required" : ""));
}

function point(e) { const b = canvas.getBoundingClientRect(); return [e.clientX - b.left, e.clientY - b.top]; }
canvas.addEventListener("pointerdown", (e) => { down = true; ctx.beginPath(); ctx.moveTo(...point(e)); });
canvas.addEventListener("pointermove", (e) => { if (down) { ctx.lineTo(...point(e)); ctx.stroke(); drawn = true; } });
window.addEventListener("pointerup", () => { down = false; });
document.getElementById("clear").addEventListener("click", () => { ctx.clearRect(0, 0, canvas.width, canvas.height); drawn = false; });

async function report(status) {
  const order = stopEl.dataset.order;
  if (!order) return;
  const body = {order, status};
  const pin = document.getElementById("pin").value.trim();
  if (pin) body.pin = pin;
  if (drawn) body.signature = canvas.toDataURL("image/png");
  const r = await fetch(base + "/outcome", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const answer = await r.json();
  text(msg, r.ok ? `${order}: ${status}` + (answer.exceptions.length ? ` (${answer.exceptions.join("; ")})` : "")
                 : (answer.error ? answer.error.message : "error"));
  document.getElementById("pin").value = "";
  ctx.clearRect(0, 0, canvas.width, canvas.height); drawn = false;
  await load();
}
document.getElementById("delivered").addEventListener("click", () => report("delivered"));
document.getElementById("failed").addEventListener("click", () => report("failed"));
load();
setInterval(load, 15000);
