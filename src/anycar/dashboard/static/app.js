// anycar cabin dashboard. Live values over the hub's VISS v2 WebSocket; the vehicle profile,
// mount points, accessories, driving state, activity and the signal catalog from its REST API
// (docs/dashboard.md). Vanilla JS, no build step.

import { VissClient, parseValue } from "./viss.js";
import { LiveChart } from "./chart.js";
import { startPairing } from "./pairing.js";
import { el } from "./dom.js";

const V = "Vehicle.";
const SIG = {
  speed: V + "Speed",
  gear: V + "Powertrain.Transmission.SelectedGear",
  soc: V + "Powertrain.TractionBattery.StateOfCharge.Current",
  range: V + "Powertrain.Range",
  power: V + "Powertrain.TractionBattery.CurrentPower",
  lv: V + "LowVoltageBattery.CurrentVoltage",
  cabin: V + "Cabin.HVAC.AmbientAirTemperature",
  outside: V + "Exterior.AirTemperature",
  odometer: V + "TraveledDistance",
  heading: V + "CurrentLocation.Heading",
  clock: V + "CurrentLocation.Timestamp",
  ignition: V + "LowVoltageSystemState",
  lowBeam: V + "Body.Lights.Beam.Low.IsOn",
  hazard: V + "Body.Lights.Hazard.IsSignaling",
  doorDriver: V + "Cabin.Door.Row1.DriverSide.IsOpen",
  doorPassenger: V + "Cabin.Door.Row1.PassengerSide.IsOpen",
  doorCargo: V + "Body.Trunk.Rear.IsOpen",
};
const DOOR_OF = { [SIG.doorDriver]: "driver", [SIG.doorPassenger]: "passenger", [SIG.doorCargo]: "cargo" };

// What each Android Automotive UX restriction means to a person in the cabin.
const RESTRICTION_TEXT = {
  NO_VIDEO: "No video on screens in the driver's view",
  NO_KEYBOARD: "No keyboard or text entry",
  NO_VOICE_TRANSCRIPTION: "No voice transcription",
  NO_CONFIG: "No setup or configuration screens",
  NO_DIALPAD: "No dial pad",
  NO_FILTERING: "No filtering of lists",
  LIMIT_STRING_LENGTH: "Long text is shortened",
  LIMIT_CONTENT: "Lists are shortened",
  NO_SETUP: "No setup screens",
  NO_TEXT_MESSAGE: "No text messages",
};
// Used only when the hub does not answer /api/driving-state.
const DEFAULT_RESTRICTIONS = {
  parked: [],
  idling: ["NO_VIDEO"],
  moving: ["NO_VIDEO", "NO_KEYBOARD", "NO_CONFIG", "LIMIT_STRING_LENGTH"],
};
const TRAIT_ICON = {
  light: "light", fan: "fan", display: "display", tablet: "display", wireless_charger: "charger", charger: "charger",
  cooler: "cooler", fragrance: "fragrance", camera: "camera", speaker: "speaker", button_panel: "buttons",
  knob: "buttons", buttons: "buttons", dial: "gauge", gauge: "gauge", cabin_sensor: "sensor", environment_sensor: "sensor",
  cargo_sensor: "cargo", cargo: "cargo",
};

const $ = (id) => document.getElementById(id);
const live = {}; // path -> parsed value
const meta = {}; // path -> signal metadata from /api/signals
const state = { config: null, viss: null, chart: null, drivingFromHub: null, accSignature: "", vehicleSignature: "" };
window.anycar = state; // for people poking at the page, and for the browser tests

function icon(name, cls) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  if (cls) svg.setAttribute("class", cls);
  const use = document.createElementNS(ns, "use");
  use.setAttribute("href", `icons.svg#${name}`);
  svg.append(use);
  return svg;
}

function toast(message, error = false) {
  const t = $("toast");
  t.textContent = message;
  t.className = `toast show${error ? " error" : ""}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = "toast"; }, 3500);
}

// "accessory bus feeding ..." -> "Accessory bus feeding ...": names people read start with a capital.
const sentence = (t) => (t ? `${t}`.charAt(0).toUpperCase() + `${t}`.slice(1).replaceAll("_", " ") : "");

// The vehicle outline seen from above, per body type (the doors drawn over it stay where they are).
const BODY_SVG = {
  sedan: '<rect x="22" y="10" width="76" height="200" rx="28" class="body"/><rect x="32" y="48" width="56" height="40" rx="8" class="glass"/><rect x="32" y="128" width="56" height="32" rx="8" class="glass"/>',
  hatchback: '<rect x="24" y="18" width="72" height="192" rx="22" class="body"/><rect x="33" y="50" width="54" height="40" rx="8" class="glass"/><rect x="33" y="150" width="54" height="40" rx="6" class="glass"/>',
  suv: '<rect x="20" y="10" width="80" height="200" rx="14" class="body"/><rect x="30" y="42" width="60" height="40" rx="6" class="glass"/><rect x="30" y="152" width="60" height="42" rx="5" class="glass"/><line x1="26" y1="64" x2="26" y2="186" class="roof-rail"/><line x1="94" y1="64" x2="94" y2="186" class="roof-rail"/>',
  pickup: '<rect x="22" y="10" width="76" height="104" rx="16" class="body"/><rect x="32" y="40" width="56" height="36" rx="7" class="glass"/><rect x="36" y="88" width="48" height="10" rx="3" class="glass"/><rect x="22" y="118" width="76" height="92" rx="4" class="body bed"/><rect x="30" y="124" width="60" height="78" rx="2" class="bed-floor"/>',
};

function drawBody(body) {
  const g = $("car-body");
  if (!g || g.dataset.body === body) return;
  g.dataset.body = body;
  g.innerHTML = BODY_SVG[body] || BODY_SVG.sedan;
  const cargo = document.querySelector('#door-list li[data-door="cargo"]');
  if (cargo) cargo.firstChild.textContent = body === "pickup" ? "Tailgate " : body === "sedan" ? "Boot " : "Tailgate ";
}

const fmt = (v, digits = 1) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "—");

async function api(path) {
  const base = state.config.api.replace(/\/$/, "");
  const resp = await fetch(`${base}${path}`, { headers: { accept: "application/json" } });
  if (!resp.ok) throw new Error(`${resp.status} ${resp.statusText} for ${path}`);
  return resp.json();
}

// -- live values ------------------------------------------------------------------------------
function gearLetter(g) {
  if (g === 126) return "P";
  if (g === 127 || (typeof g === "number" && g > 0)) return "D";
  if (g === 0) return "N";
  if (typeof g === "number" && g < 0) return "R";
  return null;
}

function localDrivingState() {
  const speed = live[SIG.speed];
  if (typeof speed === "number" && speed > 0) return "moving";
  if (live[SIG.gear] === 126 || live[SIG.ignition] === "OFF" || live[SIG.ignition] === "LOCK") return "parked";
  if (speed === undefined && live[SIG.gear] === undefined) return "unknown";
  return "idling";
}

function compass(deg) {
  return ["N", "NE", "E", "SE", "S", "SW", "W", "NW"][Math.round(deg / 45) % 8];
}

function onLive(path, value) {
  live[path] = value;
  state.lastValueAt = Date.now();
  switch (path) {
    case SIG.speed:
      $("speed").textContent = fmt(value, 0);
      state.chart.push("speed", value);
      break;
    case SIG.gear: {
      const letter = gearLetter(value);
      for (const s of $("gears").children) s.classList.toggle("active", s.dataset.gear === letter);
      break;
    }
    case SIG.soc:
      $("soc").textContent = fmt(value, 1);
      $("soc-ring").style.setProperty("--pct", Math.max(0, Math.min(100, value)));
      $("soc-ring").classList.toggle("low", value < 20);
      state.chart.push("soc", value);
      break;
    case SIG.range: $("range").textContent = fmt(value / 1000, 0); break;
    case SIG.power: {
      // VSS: positive flows into the battery. People read power drawn, and regeneration apart.
      const regen = value > 50;
      $("power").textContent = regen ? `+${fmt(value / 1000, 1)}` : fmt(Math.max(0, -value) / 1000, 1);
      $("power").parentElement.classList.toggle("regen", regen);
      $("power-label").textContent = regen ? "Regenerating" : "Power drawn";
      break;
    }
    case SIG.lv:
      $("lv-voltage").textContent = fmt(value, 2);
      $("lv-voltage").parentElement.classList.toggle("sag", value < 12.2);
      state.chart.push("lv", value);
      break;
    case SIG.cabin: $("cabin-temp").textContent = fmt(value, 1); break;
    case SIG.outside: $("outside-temp").textContent = fmt(value, 1); break;
    case SIG.odometer: $("odometer").textContent = fmt(value / 1000, 1); break;
    case SIG.heading: $("heading").textContent = `${fmt(value, 0)}° ${compass(value)}`; break;
    case SIG.clock: if (typeof value === "string" && value.length >= 16) $("sim-clock").textContent = value.slice(11, 16); break;
    case SIG.ignition: $("ind-ignition").textContent = value; $("ind-ignition").classList.toggle("on", value === "ON" || value === "START"); break;
    case SIG.lowBeam: $("ind-lowbeam").classList.toggle("on", value === true); break;
    case SIG.hazard: $("ind-hazard").classList.toggle("on", value === true); break;
    default:
      if (DOOR_OF[path]) {
        const door = DOOR_OF[path];
        $(`door-${door}`).classList.toggle("open", value === true);
        const li = document.querySelector(`#door-list li[data-door="${door}"]`);
        li.classList.toggle("open", value === true);
        li.querySelector("b").textContent = value === true ? "open" : "closed";
      }
  }
  if (path === SIG.speed || path === SIG.gear || path === SIG.ignition) renderDrivingState();
  const handlers = watchers.get(path);
  if (handlers) for (const h of handlers) h(value);
}

const watchers = new Map(); // path -> Set of callbacks (accessory controls, explorer)
function watch(path, fn) {
  if (!watchers.has(path)) {
    watchers.set(path, new Set());
    if (!Object.values(SIG).includes(path)) state.viss.subscribe(path, (item, err) => { if (!err && item) onLive(item.path, parseValue(item.value, meta[item.path]?.datatype)); });
  }
  watchers.get(path).add(fn);
  if (path in live) fn(live[path]);
  return () => watchers.get(path)?.delete(fn);
}

// -- driving state and restrictions ----------------------------------------------------------------
function renderDrivingState() {
  const hub = state.drivingFromHub;
  const current = hub?.state || localDrivingState();
  const chip = $("driving-state");
  chip.dataset.state = current;
  chip.textContent = current === "unknown" ? "—" : current;
  const big = $("state-big");
  big.dataset.state = current;
  big.textContent = current === "unknown" ? "Unknown" : current;
  const restrictions = hub ? hub.restrictions || [] : DEFAULT_RESTRICTIONS[current] || [];
  const explain = $("state-explain");
  if (current === "unknown") explain.textContent = "Waiting for speed and gear.";
  else if (!restrictions.length) explain.textContent = "Parked: every accessory may use its full features.";
  else explain.textContent = hub ? "While the car is " + current + ", accessories are restricted:" : "Restrictions by default (the hub has not said):";
  const affected = new Map();
  for (const a of hub?.affected || []) for (const r of a.restrictions || []) {
    if (!affected.has(r)) affected.set(r, []);
    affected.get(r).push(a.name || a.accessory);
  }
  const list = $("restriction-list");
  const sig = JSON.stringify([current, restrictions, [...affected]]);
  if (list.dataset.sig === sig) return;
  list.dataset.sig = sig;
  list.replaceChildren(...restrictions.map((r) => el("li", { "data-restriction": r, title: r },
    RESTRICTION_TEXT[r] || sentence(r.toLowerCase()),
    affected.has(r) ? el("span", { class: "who", text: "affects " + affected.get(r).join(", ") }) : null)));
}

async function pollDrivingState() {
  if (document.body.dataset.stale === "true") return;
  try {
    state.drivingFromHub = await api("/driving-state");
  } catch {
    state.drivingFromHub = null;
  }
  renderDrivingState();
}

// -- vehicle and mount points ---------------------------------------------------------------------
function powerBar(used, budget) {
  const pct = budget > 0 ? Math.min(100, (used / budget) * 100) : 0;
  const cls = used > budget ? "bar over" : pct > 80 ? "bar high" : "bar";
  return el("div", { class: cls, role: "meter", "aria-valuemin": 0, "aria-valuemax": budget, "aria-valuenow": used },
    el("span", { style: `width:${pct.toFixed(1)}%` }));
}

function renderVehicle(v) {
  const sig = JSON.stringify(v);
  if (sig === state.vehicleSignature) return;
  state.vehicleSignature = sig;
  const name = $("vehicle-name");
  name.replaceChildren(v.name || [v.brand, v.model].filter(Boolean).join(" ") || v.id || "vehicle");
  if (v.reference) name.append(el("span", { class: "ref", text: "reference profile" }));
  document.title = `anycar · ${v.name || v.model || "cabin"}`;
  drawBody(v.body || "sedan");

  $("rails").replaceChildren(...(v.rails || []).map((r) => el("div", { class: "rail", "data-rail": r.id },
    el("div", { class: "rail-head" }, el("span", { class: "rail-name", title: r.name || r.id, text: sentence(r.name || r.id) }), el("span", { text: `${fmt(r.used_w, 1)} / ${fmt(r.budget_w, 0)} W` })),
    powerBar(r.used_w || 0, r.budget_w || 0))));

  const mounts = v.mounts || [];
  $("mount-list").replaceChildren(...(mounts.length ? mounts.map((m) => {
    const f = m.fitted;
    const used = f ? f.watts || 0 : 0;
    return el("li", { class: `mount${f ? "" : " free"}`, "data-mount": m.id },
      icon(f ? TRAIT_ICON[f.trait] || "accessory" : "mount"),
      el("div", {},
        el("div", { class: "name", title: f ? f.name : sentence(m.name || m.id), text: f ? f.name : sentence(m.name || m.id) }),
        el("div", { class: "meta", text: [f ? sentence(m.name || m.id) : "free", (m.type || "").replaceAll("_", " "), m.where || m.location].filter(Boolean).join(" · ") })),
      el("div", { class: "watts" }, el("span", { text: `${fmt(used, 1)} / ${fmt(m.budget_w, 0)} W` }), powerBar(used, m.budget_w || 0)));
  }) : [el("li", { class: "empty", text: "This vehicle declares no mount points." })]));
}

async function pollVehicle() {
  try {
    renderVehicle(await api("/vehicle"));
  } catch (err) {
    if (!state.vehicleSignature) $("vehicle-name").textContent = "Vehicle profile unavailable";
  }
}

// -- accessories ---------------------------------------------------------------------------------------
// A refusal in words a person in the cabin understands (the hub's text stays in the tooltip).
function plainRefusal(err, ctrl) {
  const detail = `${err.detail || err.message || ""}`;
  const code = Object.keys(RESTRICTION_TEXT).find((r) => detail.includes(r));
  const driving = state.drivingFromHub?.state || localDrivingState();
  if (code) return `Not now: ${RESTRICTION_TEXT[code].toLowerCase()} while the car is ${driving}.`;
  if (err.reason === "forbidden" || err.reason === "user_forbidden" || `${err.number}` === "403") return "You may not change this setting.";
  if (err.reason === "timeout" || `${err.number}` === "408") return `${ctrl.label || "The accessory"} did not answer in time; nothing was changed.`;
  if (err.reason === "service_unavailable") return "The hub is not reachable; nothing was changed.";
  const said = detail.replace(/^\d+\s+[a-z_]+:\s*/, "").replace(/^[a-z_]+:\s*/, "");
  return said ? `Not changed: ${said.charAt(0).toLowerCase()}${said.slice(1)}` : "The setting was refused; nothing was changed.";
}

const UNIT_TEXT = { percent: "%", Celsius: "°C", "km/h": " km/h", W: " W", V: " V", A: " A", m: " m" };
const unitText = (u) => (u ? UNIT_TEXT[u] ?? ` ${u}` : "");

function controlWidget(ctrl) {
  const id = `ctl-${ctrl.path.replaceAll(".", "-")}`;
  const wrap = el("div", { class: "control unknown", "data-path": ctrl.path, "data-kind": ctrl.kind });
  const label = el("label", { for: id, text: ctrl.label || ctrl.path.split(".").pop() });
  const note = el("div", { class: "control-note", role: "status" });
  let input;
  let show = () => {};
  let shown; // the value the control shows: the accessory's, never a made-up one
  const known = (v) => { shown = v; wrap.classList.remove("unknown"); };
  const send = async (value) => {
    const before = shown;
    wrap.classList.add("pending");
    wrap.classList.remove("error");
    note.textContent = "";
    try {
      await state.viss.set(ctrl.path, value);
    } catch (err) {
      wrap.classList.add("error");
      const words = plainRefusal(err, ctrl);
      note.textContent = words;
      note.title = err.message;
      toast(`${ctrl.label || ctrl.path}: ${words}`, true);
      wrap.classList.remove("pending");
      show(ctrl.path in live ? live[ctrl.path] : before); // back to what the accessory really has
      return;
    } finally {
      wrap.classList.remove("pending");
    }
  };
  if (ctrl.kind === "switch") {
    input = el("input", { id, type: "checkbox", role: "switch", onchange: () => send(input.checked) });
    const state_ = el("span", { class: "switch-state", text: "unknown" });
    wrap.append(label, el("span", { class: "switch-wrap" }, state_, el("label", { class: "switch" }, input, el("span"))));
    show = (v) => {
      if (typeof v !== "boolean") { input.checked = false; state_.textContent = "unknown"; wrap.classList.add("unknown"); return; }
      input.checked = v; state_.textContent = v ? "on" : "off"; known(v);
    };
  } else if (ctrl.kind === "color") {
    input = el("input", { id, type: "color", onchange: () => send(input.value.toUpperCase()) });
    const text = el("span", { class: "color-text", text: "unknown" });
    wrap.append(label, el("span", { class: "color-wrap" }, text, input));
    show = (v) => {
      const m = typeof v === "string" ? /^#?([0-9a-fA-F]{6})$/.exec(v) : null;
      if (!m) { text.textContent = "unknown"; wrap.classList.add("unknown"); return; }
      input.value = `#${m[1].toLowerCase()}`; text.textContent = `#${m[1].toUpperCase()}`; known(v);
    };
  } else if (ctrl.kind === "select") {
    const placeholder = el("option", { value: "", text: "unknown", disabled: true, selected: true });
    input = el("select", { id, onchange: () => send(input.value) }, placeholder, ...(ctrl.options || []).map((o) => el("option", { value: o, text: o })));
    wrap.append(label, input);
    show = (v) => {
      if (v === null || v === undefined || !(ctrl.options || []).includes(String(v))) { input.value = ""; wrap.classList.add("unknown"); return; }
      input.value = String(v); known(v);
    };
  } else {
    const out = el("output", { for: id, text: "unknown" });
    input = el("input", { id, type: "range", min: ctrl.min ?? 0, max: ctrl.max ?? 100, step: ctrl.step ?? 1, value: ctrl.min ?? 0 });
    const unit = unitText(ctrl.unit);
    input.addEventListener("input", () => { out.textContent = `${input.value}${unit}`; });
    input.addEventListener("change", () => send(Number(input.value)));
    wrap.append(label, out, input);
    show = (v) => {
      if (typeof v !== "number") { out.textContent = "unknown"; input.value = ctrl.min ?? 0; wrap.classList.add("unknown"); return; }
      input.value = v; out.textContent = `${v}${unit}`; known(v);
    };
  }
  wrap.append(note);
  if (ctrl.path in live) show(live[ctrl.path]);
  watch(ctrl.path, (v) => { if (!wrap.classList.contains("pending")) show(v); });
  return wrap;
}

function renderAccessories(data) {
  const list = data.accessories || [];
  // Rebuild the cards only when what they show changes, so a control being used is not replaced.
  const sig = JSON.stringify(list.map((a) => [a.id, a.name, a.state, a.mount, a.controls, a.readings, a.restricted]));
  const grid = $("acc-grid");
  if (sig !== state.accSignature) {
    state.accSignature = sig;
    grid.replaceChildren(...(list.length ? list.map((a) => el("article", { class: "acc", "data-accessory": a.id, "data-state": a.state || "running" },
      el("div", { class: "acc-head" }, icon(TRAIT_ICON[a.trait] || "accessory"),
        el("div", { class: "acc-names" }, el("div", { class: "acc-title", text: a.name || a.id, title: `${a.name || a.id} (${a.id})` }),
          el("div", { class: "acc-sub", title: a.mount_name || a.mount || "", text: [a.vendor, (a.mount_name || a.mount) && `at ${a.mount_name || a.mount}`].filter(Boolean).join(" · ") })),
        el("span", { class: `badge ${a.state || "running"}`, text: a.state || "running" })),
      ...(a.controls || []).map(controlWidget),
      ...(a.readings || []).map((r) => {
        const b = el("b", { text: "unknown" });
        const unit = unitText(r.unit);
        watch(r.path, (v) => { b.textContent = typeof v === "number" ? `${fmt(v, 1)}${unit}` : v === null || v === undefined ? "unknown" : String(v); });
        return el("div", { class: "reading", "data-path": r.path }, el("span", { text: r.label || r.path.split(".").pop() }), b);
      }),
      (a.restricted || []).length ? el("div", { class: "acc-note", title: a.restricted.join(", "), text: "Restricted now: " + a.restricted.map((r) => (RESTRICTION_TEXT[r] || r).toLowerCase()).join("; ") }) : null,
      el("div", { class: "acc-power", "data-role": "power" }))) : [el("p", { class: "empty", text: "No accessories fitted yet." })]));
  }
  for (const a of list) {
    const p = grid.querySelector(`[data-accessory="${CSS.escape(a.id)}"] [data-role="power"]`);
    if (p && a.power) p.replaceChildren(el("span", { text: `now ${fmt(a.power.now_w ?? a.power.typical_w, 1)} W` }), el("span", { text: `peak ${fmt(a.power.peak_w, 1)} W` }));
  }
}

async function pollAccessories() {
  if (document.body.dataset.stale === "true") return; // the REST answers would be from a dead hub
  try { renderAccessories(await api("/accessories")); } catch { /* keep what is shown */ }
}

// -- activity -------------------------------------------------------------------------------------------
async function pollEvents() {
  let data;
  try { data = await api("/events?limit=30"); } catch { return; }
  const items = data.events || [];
  $("event-list").replaceChildren(...(items.length ? items.map((e) => el("li", { "data-kind": e.kind },
    el("time", { datetime: e.ts, text: (e.ts || "").slice(11, 19) }),
    el("span", {}, el("span", { class: `kind ${e.kind}`, text: e.kind }), e.message || ""))) : [el("li", { class: "empty", text: "Nothing yet." })]));
}

// -- signal explorer --------------------------------------------------------------------------------
let explorerUnwatch = null;

function showSignal(path) {
  for (const b of document.querySelectorAll(".tree .leaf.selected")) b.classList.remove("selected");
  document.querySelector(`.tree .leaf[data-path="${CSS.escape(path)}"]`)?.classList.add("selected");
  const m = meta[path] || { path };
  const value = el("div", { class: "live", "data-testid": "signal-value", text: "—" });
  const rows = ["type", "datatype", "unit", "min", "max", "allowed", "description"]
    .filter((k) => m[k] !== undefined && m[k] !== null)
    .map((k) => el("tr", {}, el("td", { text: k }), el("td", { text: Array.isArray(m[k]) ? m[k].join(", ") : String(m[k]) })));
  const parts = [el("h3", { text: path, title: path }), value, el("table", {}, el("tbody", {}, rows))];
  if (m.type === "actuator") {
    const input = el("input", { name: "value", placeholder: m.datatype === "boolean" ? "true or false" : `new ${m.datatype} value`, "aria-label": "new value" });
    parts.push(el("form", { onsubmit: async (e) => {
      e.preventDefault();
      try { await state.viss.set(path, parseValue(input.value, m.datatype)); toast(`Asked ${path.split(".").pop()} to be ${input.value}`); }
      catch (err) { toast(err.message, true); }
    } }, input, el("button", { class: "primary", type: "submit", text: "Set" })));
  }
  $("signal-detail").replaceChildren(...parts);
  if (explorerUnwatch) explorerUnwatch();
  const render = (v) => {
    if (v === null || v === undefined) { value.textContent = "no value yet"; return; }
    value.textContent = typeof v === "number" ? `${+v.toFixed(4)}${m.unit ? unitText(m.unit) : ""}` : String(v);
  };
  explorerUnwatch = watch(path, render);
  state.viss.get(path).then((items) => { for (const it of items) onLive(it.path, parseValue(it.value, m.datatype)); }).catch((err) => {
    if (!(path in live)) value.textContent = err.reason === "unavailable_data" ? "no value yet" : "—";
  });
}

function leafButton(path, name) {
  const m = meta[path] || {};
  const kind = m.type === "actuator" ? "actuator" : m.datatype || "";
  return el("button", { class: "leaf", type: "button", role: "treeitem", "data-path": path, title: `${path}${m.unit ? ` (${m.unit})` : ""}${m.description ? `\n${m.description}` : ""}`, onclick: () => showSignal(path) },
    el("span", { class: "n", text: name }), el("span", { class: "t", text: m.unit ? `${kind} · ${m.unit}` : kind }));
}

function buildTree(paths) {
  const root = {};
  for (const p of paths) {
    let node = root;
    const parts = p.split(".");
    parts.forEach((part, i) => {
      if (i === parts.length - 1) { (node.__leaves ||= []).push([part, p]); return; }
      node = node[part] ||= {};
    });
  }
  return root;
}

function renderBranch(node, prefix) {
  const out = [];
  for (const key of Object.keys(node).filter((k) => k !== "__leaves").sort()) {
    const child = node[key];
    const path = prefix ? `${prefix}.${key}` : key;
    const d = el("details", { "data-branch": path }, el("summary", { text: key }));
    let filled = false;
    d.addEventListener("toggle", () => { if (d.open && !filled) { filled = true; d.append(...renderBranch(child, path)); } });
    out.push(d);
  }
  for (const [name, path] of (node.__leaves || []).sort()) out.push(leafButton(path, name));
  return out;
}

async function loadExplorer() {
  const tree = $("signal-tree");
  let data;
  try { data = await api("/signals?pattern=Vehicle.**&limit=5000"); } catch (err) {
    tree.replaceChildren(el("p", { class: "empty", text: `The signal catalog is not available (${err.message}).` }));
    return;
  }
  for (const s of data.signals || []) meta[s.path] = s;
  const paths = Object.keys(meta);
  const full = renderBranch(buildTree(paths), "");
  tree.replaceChildren(...full);
  const top = tree.querySelector("details");
  if (top) top.open = true;
  const hasValue = (p) => (p in live ? live[p] !== null && live[p] !== undefined : meta[p].value !== null && meta[p].value !== undefined);
  const filter = async () => {
    const q = $("signal-search").value.trim().toLowerCase();
    const only = $("signal-has-value").checked;
    if (!q && !only) { tree.replaceChildren(...full); return; }
    if (only) {
      try { for (const sgl of (await api("/signals?pattern=Vehicle.**&limit=5000")).signals || []) meta[sgl.path] = sgl; } catch { /* keep what is known */ }
    }
    const hits = paths.filter((p) => (!q || p.toLowerCase().includes(q)) && (!only || hasValue(p))).slice(0, 300);
    tree.replaceChildren(...(hits.length ? hits.map((p) => leafButton(p, p.replace(/^Vehicle\./, ""))) : [el("p", { class: "empty", text: only ? "No signal with a value matches." : "No signal matches." })]));
  };
  $("signal-search").addEventListener("input", filter);
  $("signal-has-value").addEventListener("change", filter);
}

// -- history and staleness -------------------------------------------------------------------------------
const CHARTED = [[SIG.speed, "speed"], [SIG.soc, "soc"], [SIG.lv, "lv"]];

async function loadHistory() {
  // what the hub recorded of the last two minutes, so the chart is not empty on load
  // (VISS history leaves out the current value: a signal that has not changed since has only that)
  await Promise.all(CHARTED.map(async ([path, key]) => {
    let items = [];
    try {
      items = await state.viss.history(path, "PT2M"); // the values before the current one
    } catch { /* none recorded (a constant value), or a hub without history */ }
    try {
      items = [...items, ...(await state.viss.get(path))]; // and the current one, with its time
    } catch { /* no value yet */ }
    state.chart.load(key, items.map((it) => [Date.parse(it.ts), Number(it.value)]));
  }));
  document.body.dataset.history = "loaded";
}

function setStale(stale) {
  // When the hub stops, nothing shown is live any more: grey it out and say what is not known.
  const was = document.body.dataset.stale === "true";
  document.body.dataset.stale = stale ? "true" : "false";
  state.chart?.setStale(stale);
  if (stale) {
    for (const b of document.querySelectorAll(".acc .badge")) { b.dataset.was = b.textContent; b.textContent = "unknown"; }
    const chip = $("driving-state");
    chip.textContent = "unknown";
    $("state-big").textContent = "Unknown";
    $("state-explain").textContent = "The hub is offline: the restrictions below are the last it reported.";
    $("restriction-list").dataset.sig = ""; // redrawn when the hub is back
  } else if (was) {
    state.accSignature = ""; // rebuild with what the hub says now
    state.vehicleSignature = "";
    pollAccessories();
    pollVehicle();
    pollDrivingState();
  }
}

// -- start ---------------------------------------------------------------------------------------------
async function loadConfig() {
  try {
    const resp = await fetch("config.json");
    if (resp.ok) return await resp.json();
  } catch { /* defaults below */ }
  return {};
}

async function main() {
  const cfg = await loadConfig();
  const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
  state.config = {
    api: cfg.api || "/api",
    viss: cfg.viss || `${wsScheme}//${location.host}/viss`,
    refreshMs: cfg.refresh_ms || 3000,
  };
  $("foot-endpoint").textContent = `VISS ${state.config.viss} · REST ${state.config.api}`;
  state.chart = new LiveChart($("live-chart"), {
    windowS: 120,
    series: [
      { key: "speed", name: "Speed", unit: "km/h", color: "#60a5fa", min: 0, minSpan: 20, digits: 0, label: $("legend-speed") },
      { key: "soc", name: "Charge", unit: "%", color: "#34d399", minSpan: 2, digits: 1, label: $("legend-soc") },
      { key: "lv", name: "12 V rail", unit: "V", color: "#fbbf24", minSpan: 1, digits: 2, axisDigits: 1, label: $("legend-lv") },
    ],
  });
  const conn = $("connection");
  state.viss = new VissClient(state.config.viss, {
    onStatus: (status) => {
      conn.dataset.status = status;
      if (status === "live") {
        conn.querySelector(".conn-text").textContent = "live";
        setStale(false);
        loadHistory();
      } else if (status === "offline") {
        const at = state.lastValueAt ? new Date(state.lastValueAt).toLocaleTimeString([], { hour12: false }) : null;
        conn.querySelector(".conn-text").textContent = at ? `offline · values from ${at}` : "offline";
        setStale(true);
      } else {
        conn.querySelector(".conn-text").textContent = status;
      }
    },
  });
  for (const path of Object.values(SIG)) {
    state.viss.subscribe(path, (item, err) => {
      if (err || !item) return;
      onLive(item.path, parseValue(item.value, meta[item.path]?.datatype));
    });
  }
  state.viss.connect();
  renderDrivingState();
  await Promise.all([pollVehicle(), pollAccessories(), pollDrivingState(), pollEvents()]);
  loadExplorer();
  startPairing({ base: state.config.api.replace(/\/$/, ""), el, toast, refreshMs: 2000 });
  setInterval(pollDrivingState, 2000);
  setInterval(pollVehicle, state.config.refreshMs);
  setInterval(pollAccessories, state.config.refreshMs);
  setInterval(pollEvents, state.config.refreshMs);
  document.body.dataset.ready = "true";
}

main();
