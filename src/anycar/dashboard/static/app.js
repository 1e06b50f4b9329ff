// anycar cabin dashboard. Live values over the hub's VISS v2 WebSocket; the vehicle profile,
// mount points, accessories, driving state, activity and the signal catalog from its REST API
// (docs/dashboard.md). Vanilla JS, no build step.

import { VissClient, parseValue } from "./viss.js";
import { LiveChart } from "./chart.js";
import { startPairing } from "./pairing.js";

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

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

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
  list.replaceChildren(...restrictions.map((r) => el("li", { "data-restriction": r },
    el("code", { text: r }), " ", RESTRICTION_TEXT[r] || r.replaceAll("_", " ").toLowerCase(),
    affected.has(r) ? el("span", { class: "who", text: "affects " + affected.get(r).join(", ") }) : null)));
}

async function pollDrivingState() {
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

  $("rails").replaceChildren(...(v.rails || []).map((r) => el("div", { class: "rail", "data-rail": r.id },
    el("div", { class: "rail-head" }, el("span", { text: r.name || r.id }), el("span", { text: `${fmt(r.used_w, 1)} / ${fmt(r.budget_w, 0)} W` })),
    powerBar(r.used_w || 0, r.budget_w || 0))));

  const mounts = v.mounts || [];
  $("mount-list").replaceChildren(...(mounts.length ? mounts.map((m) => {
    const f = m.fitted;
    const used = f ? f.watts || 0 : 0;
    return el("li", { class: `mount${f ? "" : " free"}`, "data-mount": m.id },
      icon(f ? TRAIT_ICON[f.trait] || "accessory" : "mount"),
      el("div", {},
        el("div", { class: "name", text: f ? f.name : m.name || m.id }),
        el("div", { class: "meta", text: [f ? m.name || m.id : "free", (m.type || "").replaceAll("_", " "), m.location].filter(Boolean).join(" · ") })),
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
function controlWidget(ctrl) {
  const id = `ctl-${ctrl.path.replaceAll(".", "-")}`;
  const wrap = el("div", { class: "control", "data-path": ctrl.path, "data-kind": ctrl.kind });
  const label = el("label", { for: id, text: ctrl.label || ctrl.path.split(".").pop() });
  let input;
  let show = () => {};
  const send = async (value) => {
    wrap.classList.add("pending");
    wrap.classList.remove("error");
    try {
      await state.viss.set(ctrl.path, value);
    } catch (err) {
      wrap.classList.add("error");
      toast(`${ctrl.label || ctrl.path}: ${err.message}`, true);
      if (ctrl.path in live) show(live[ctrl.path]);
    } finally {
      wrap.classList.remove("pending");
    }
  };
  if (ctrl.kind === "switch") {
    input = el("input", { id, type: "checkbox", role: "switch", onchange: () => send(input.checked) });
    wrap.append(label, el("label", { class: "switch" }, input, el("span")));
    show = (v) => { input.checked = v === true; };
  } else if (ctrl.kind === "color") {
    input = el("input", { id, type: "color", onchange: () => send(input.value.toUpperCase()) });
    wrap.append(label, input);
    show = (v) => { if (typeof v === "string" && /^#[0-9a-fA-F]{6}$/.test(v)) input.value = v.toLowerCase(); };
  } else if (ctrl.kind === "select") {
    input = el("select", { id, onchange: () => send(input.value) }, ...(ctrl.options || []).map((o) => el("option", { value: o, text: o })));
    wrap.append(label, input);
    show = (v) => { if (v !== null && v !== undefined) input.value = String(v); };
  } else {
    const out = el("output", { for: id, text: "—" });
    input = el("input", { id, type: "range", min: ctrl.min ?? 0, max: ctrl.max ?? 100, step: ctrl.step ?? 1 });
    const unit = ctrl.unit === "percent" ? "%" : ctrl.unit === "Celsius" ? "°C" : ctrl.unit ? ` ${ctrl.unit}` : "";
    input.addEventListener("input", () => { out.textContent = `${input.value}${unit}`; });
    input.addEventListener("change", () => send(Number(input.value)));
    wrap.append(label, out, input);
    show = (v) => { if (typeof v === "number") { input.value = v; out.textContent = `${v}${unit}`; } };
  }
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
        el("div", {}, el("div", { class: "acc-title", text: a.name || a.id }),
          el("div", { class: "acc-sub", text: [a.vendor, a.mount && `at ${a.mount}`].filter(Boolean).join(" · ") })),
        el("span", { class: `badge ${a.state || "running"}`, text: a.state || "running" })),
      ...(a.controls || []).map(controlWidget),
      ...(a.readings || []).map((r) => {
        const b = el("b", { text: "—" });
        const unit = r.unit === "Celsius" ? " °C" : r.unit === "percent" ? " %" : r.unit ? ` ${r.unit}` : "";
        watch(r.path, (v) => { b.textContent = typeof v === "number" ? `${fmt(v, 1)}${unit}` : String(v); });
        return el("div", { class: "reading", "data-path": r.path }, el("span", { text: r.label || r.path.split(".").pop() }), b);
      }),
      (a.restricted || []).length ? el("div", { class: "acc-note", text: "Restricted now: " + a.restricted.join(", ") }) : null,
      el("div", { class: "acc-power", "data-role": "power" }))) : [el("p", { class: "empty", text: "No accessories fitted yet." })]));
  }
  for (const a of list) {
    const p = grid.querySelector(`[data-accessory="${CSS.escape(a.id)}"] [data-role="power"]`);
    if (p && a.power) p.replaceChildren(el("span", { text: `now ${fmt(a.power.now_w ?? a.power.typical_w, 1)} W` }), el("span", { text: `peak ${fmt(a.power.peak_w, 1)} W` }));
  }
}

async function pollAccessories() {
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
  const parts = [el("h3", { text: path }), value, el("table", {}, el("tbody", {}, rows))];
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
  const render = (v) => { value.textContent = v === null || v === undefined ? "—" : typeof v === "number" ? String(+v.toFixed(4)) : String(v) + (m.unit && typeof v === "number" ? ` ${m.unit}` : ""); };
  explorerUnwatch = watch(path, render);
  state.viss.get(path).then((items) => { for (const it of items) onLive(it.path, parseValue(it.value, m.datatype)); }).catch((err) => {
    if (!(path in live)) value.textContent = err.reason === "unavailable_data" ? "no value yet" : "—";
  });
}

function leafButton(path, name) {
  const m = meta[path] || {};
  return el("button", { class: "leaf", type: "button", role: "treeitem", "data-path": path, onclick: () => showSignal(path) },
    name, el("span", { class: "t", text: m.type === "actuator" ? "actuator" : m.datatype || "" }));
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
  $("signal-search").addEventListener("input", () => {
    const q = $("signal-search").value.trim().toLowerCase();
    if (!q) { tree.replaceChildren(...full); return; }
    const hits = paths.filter((p) => p.toLowerCase().includes(q)).slice(0, 300);
    tree.replaceChildren(...(hits.length ? hits.map((p) => leafButton(p, p.replace(/^Vehicle\./, ""))) : [el("p", { class: "empty", text: "No signal matches." })]));
  });
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
      { key: "speed", color: "#60a5fa", min: 0, minSpan: 20, digits: 0, label: $("legend-speed") },
      { key: "soc", color: "#34d399", minSpan: 0.5, digits: 1, label: $("legend-soc") },
      { key: "lv", color: "#fbbf24", minSpan: 0.5, digits: 2, label: $("legend-lv") },
    ],
  });
  const conn = $("connection");
  state.viss = new VissClient(state.config.viss, {
    onStatus: (status) => {
      conn.dataset.status = status;
      conn.querySelector(".conn-text").textContent = status === "live" ? "live" : status;
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
