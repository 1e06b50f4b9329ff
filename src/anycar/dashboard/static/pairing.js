// The "Add an accessory" panel: the owner trusts a vendor's key, sees each accessory waiting to be
// paired with the mount it would take, and pairs it with the code the accessory shows
// (POST /trust, GET|POST /pairing of the hub's REST API). Refusals are said in plain words.

const PLAIN = {
  pairing_failed: "That is not the accessory's code.",
  locked_out: "Too many wrong codes: pairing this accessory is locked for a while.",
  fit_refused: "No free mount fits this accessory.",
  user_forbidden: "Only the car's owner may do this.",
  token_missing: "Only the car's owner may do this (sign in with an owner token).",
  bad_request: "The hub did not accept this:",
};

async function post(base, path, body) {
  const resp = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
  });
  let data = {};
  try { data = await resp.json(); } catch { /* an empty or non-JSON answer */ }
  if (!resp.ok) {
    const e = data.error || {};
    const err = new Error(PLAIN[e.reason] ? `${PLAIN[e.reason]} ${e.reason === "bad_request" ? e.message : ""}`.trim() : e.message || resp.statusText);
    err.reason = e.reason;
    err.detail = e.message;
    throw err;
  }
  return data;
}

export function startPairing({ base, el, toast, refreshMs = 2000 }) {
  const list = document.getElementById("pair-list");
  const form = document.getElementById("trust-form");
  const note = document.getElementById("pair-note");
  let signature = "";

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const vendor = form.elements.vendor.value.trim();
    const key = form.elements.key.value.trim();
    try {
      const k = await post(base, "/trust", { vendor_id: vendor, public_key: key, label: "from the dashboard" });
      note.textContent = k.already_trusted ? `Key ${k.key_id} was already trusted.` : `Trusted key ${k.key_id} of vendor ${k.vendor_id}.`;
      note.className = "pair-note ok";
      form.reset();
    } catch (err) {
      note.textContent = err.message;
      note.className = "pair-note error";
    }
  });

  function row(w) {
    const input = el("input", { name: "code", inputmode: "numeric", placeholder: "1234-5678", "aria-label": `pairing code of ${w.product_name}`, autocomplete: "off" });
    const button = el("button", { class: "primary", type: "submit", text: "Pair" });
    const status = el("div", { class: "pair-status" });
    const where = w.mount
      ? el("div", { class: "meta", "data-role": "mount", text: `would take ${w.mount.name} (${w.mount.type.replaceAll("_", " ")})` })
      : el("div", { class: "meta warn", "data-role": "mount", text: w.why_no_mount });
    return el("li", { class: "pair", "data-accessory": w.accessory },
      el("div", {}, el("div", { class: "name", text: `${w.vendor_name} ${w.product_name}` }), where,
        el("div", { class: "meta", text: `serial ${w.serial} · peak ${w.power.peak_w} W` })),
      el("form", { onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        try {
          const rec = await post(base, "/pairing", { accessory: w.accessory, code: input.value, ...(w.mount ? { mount: w.mount.id } : {}) });
          const said = `Paired ${w.product_name} as ${rec.instance} at ${rec.mount.description || rec.mount.id}`;
          toast(said);
          note.textContent = said;
          note.className = "pair-note ok";
          signature = "";
        } catch (err) {
          // A refused accessory is told why and hangs up, so its row goes: say it in the panel too.
          status.textContent = err.message;
          status.className = "pair-status error";
          note.textContent = `${w.product_name}: ${err.message}`;
          note.className = "pair-note error";
        } finally {
          button.disabled = false;
        }
      } }, input, button), status);
  }

  async function poll() {
    let view;
    try {
      const resp = await fetch(`${base}/pairing`, { headers: { accept: "application/json" } });
      if (!resp.ok) return;
      view = await resp.json();
    } catch { return; }
    const waiting = view.waiting || [];
    const sig = JSON.stringify(waiting.map((w) => [w.accessory, w.mount && w.mount.id, w.why_no_mount]));
    if (sig === signature) return;
    signature = sig;
    list.replaceChildren(...(waiting.length ? waiting.map(row)
      : [el("li", { class: "empty", text: "No accessory is waiting. Start one; it appears here once its vendor's key is trusted." })]));
  }

  poll();
  setInterval(poll, refreshMs);
}
