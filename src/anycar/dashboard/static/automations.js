// anycar cabin dashboard: the Automations panel. Lists the hub's automations with their state and
// last run, says why a refused one is refused, and draws a chosen run as a timeline: the trigger,
// each condition with its result and reason, each action as a bar from its start for its
// duration, coloured by its outcome. REST only (/api/v1/automations); a separate module so the
// other panels do not depend on it.

import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const panel = { api: "/api", selected: null, runIndex: 0, signature: "" };
window.anycarAutomations = panel; // for the browser tests

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function get(path, options) {
  const resp = await fetch(`${panel.api}${path}`, { headers: { accept: "application/json" }, ...options });
  if (!resp.ok) throw new Error(`${resp.status}`);
  return resp.json();
}

const OUTCOME_CLASS = {
  accepted: "ok", done: "ok", "would actuate": "ok", "would apply": "ok", "would wait": "ok", "would notify": "ok",
  rejected: "bad", refused: "bad", timed_out: "bad", no_provider: "bad", error: "bad", failed: "bad",
  "timed out": "warn", partly: "warn", stopped: "warn", running: "run",
};
const RESULT_CLASS = { done: "ok", failed: "bad", loop: "bad", running: "run", stopped: "warn", cancelled: "warn",
  skipped: "muted", conditions_not_met: "muted" };

function time(ts) {
  return ts ? new Date(ts * 1000).toLocaleTimeString([], { hour12: false }) : "—";
}

function renderList(data) {
  const list = $("automation-list");
  const health = data.health || {};
  $("automation-health").textContent =
    health.database === "ok" ? `${health.active} active · ${health.runs} runs`
      : `database ${health.database}${health.error ? `: ${health.error}` : ""} · running from memory`;
  $("automation-health").dataset.state = health.database === "ok" ? "ok" : "bad";
  const items = [];
  for (const a of data.automations) {
    const last = a.last_run;
    const result = last ? last.result : "never run";
    items.push(el("li", { class: `automation${panel.selected === a.id ? " selected" : ""}`, "data-id": a.id,
      onclick: () => select(a.id) },
      el("div", { class: "automation-head" },
        el("span", { class: "automation-name", text: a.alias || a.id }),
        el("span", { class: `chip result ${RESULT_CLASS[result] || "muted"}`, text: a.enabled ? result.replaceAll("_", " ") : "disabled" })),
      el("div", { class: "automation-meta muted", text: `${a.triggers.join(" · ")} · last ${time(last && last.started)}` })));
  }
  for (const s of data.not_active || []) {
    const why = (s.problems && s.problems[0] && s.problems[0].message) || s.state.replaceAll("_", " ");
    items.push(el("li", { class: "automation refused", "data-id": s.id },
      el("div", { class: "automation-head" },
        el("span", { class: "automation-name", text: s.id }),
        el("span", { class: "chip result muted", text: s.state.replaceAll("_", " ") })),
      el("div", { class: "automation-meta muted", text: why })));
  }
  list.replaceChildren(...(items.length ? items : [el("li", { class: "empty", text: "No automations loaded." })]));
}

async function select(id) {
  panel.selected = id;
  panel.runIndex = 0;
  for (const li of document.querySelectorAll("#automation-list li.automation")) {
    li.classList.toggle("selected", li.dataset.id === id);
  }
  await loadTraces();
}

async function loadTraces() {
  if (!panel.selected) return;
  try {
    const data = await get(`/automations/${encodeURIComponent(panel.selected)}/traces?limit=10`);
    panel.traces = data.traces;
    renderTrace();
  } catch {
    $("automation-trace").replaceChildren(el("p", { class: "muted", text: "No trace available." }));
  }
}

function renderTrace() {
  const box = $("automation-trace");
  const traces = panel.traces || [];
  if (!traces.length) {
    box.replaceChildren(el("p", { class: "muted", text: `${panel.selected} has not run yet.` }));
    return;
  }
  const trace = traces[Math.min(panel.runIndex, traces.length - 1)];
  const picker = el("div", { class: "run-picker" }, traces.map((t, i) =>
    el("button", { class: `run ${RESULT_CLASS[t.result] || "muted"}${i === panel.runIndex ? " active" : ""}`,
      title: `${t.result} at ${time(t.started)}`, onclick: () => { panel.runIndex = i; renderTrace(); } }, time(t.started))));
  const trig = trace.trigger || {};
  const head = el("div", { class: "trace-head" },
    el("b", { text: `${trace.result.replaceAll("_", " ")}` }),
    trace.reason ? ` — ${trace.reason}` : "",
    el("div", { class: "muted", text: `trigger ${trig.id || trig.kind || ""}: ${trig.description || ""}` +
      ("value" in trig && trig.value !== null ? ` = ${JSON.stringify(trig.value)}` : "") }));
  const conditions = el("ul", { class: "trace-conditions" }, (trace.conditions || []).map((c) =>
    el("li", { class: c.result ? "ok" : "bad" }, el("b", { text: c.result ? "✓ " : "✗ " }), c.why)));
  box.replaceChildren(picker, head, conditions, timeline(trace));
}

function timeline(trace) {
  const actions = trace.actions || [];
  const rowH = 26, left = 190, width = 640, top = 22;
  const total = Math.max(1, trace.duration_ms || 0,
    ...actions.map((a) => (a.start_ms || 0) + (a.duration_ms || 0)));
  const scale = (ms) => left + (ms / total) * (width - left - 84); // room on the right for the outcome
  const root = svg("svg", { class: "trace-timeline", "data-testid": "automation-timeline",
    viewBox: `0 0 ${width} ${top + rowH * Math.max(1, actions.length) + 8}`, role: "img",
    "aria-label": `run ${trace.run_id} as a timeline` });
  root.append(svg("text", { x: left, y: 14, class: "axis" }, "0 ms"));
  root.append(svg("text", { x: width - 84, y: 14, class: "axis", "text-anchor": "end" }, `${total.toFixed(1)} ms`));
  root.append(svg("line", { x1: left, x2: left, y1: 18, y2: top + rowH * actions.length, class: "trigger-mark" }));
  actions.forEach((a, i) => {
    const y = top + i * rowH;
    const x = scale(a.start_ms || 0);
    const w = Math.max(3, scale((a.start_ms || 0) + (a.duration_ms || 0)) - x);
    const cls = OUTCOME_CLASS[a.outcome] || "muted";
    root.append(svg("text", { x: 4, y: y + 16, class: "label" }, a.action.length > 30 ? a.action.slice(0, 29) + "…" : a.action));
    const bar = svg("rect", { x, y: y + 4, width: w, height: rowH - 10, rx: 4, class: `bar ${cls}`, "data-outcome": a.outcome });
    bar.append(svg("title", {}, `${a.where} ${a.action}: ${a.outcome}${a.detail ? ` (${a.detail})` : ""}, ` +
      `${(a.duration_ms || 0).toFixed(2)} ms from +${(a.start_ms || 0).toFixed(2)} ms`));
    root.append(bar);
    root.append(svg("text", { x: x + w + 6, y: y + 16, class: `outcome ${cls}` }, a.outcome.replaceAll("_", " ")));
  });
  return root;
}

async function poll() {
  try {
    const data = await get("/automations");
    const signature = JSON.stringify([data.automations.map((a) => [a.id, a.state, a.last_run && a.last_run.run_id]),
      data.not_active.map((s) => s.id), data.health.database]);
    if (signature !== panel.signature) {
      panel.signature = signature;
      renderList(data);
      if (panel.selected) await loadTraces();
    }
    $("panel-automations").dataset.state = "live";
  } catch {
    $("panel-automations").dataset.state = "off";
    $("automation-list").replaceChildren(el("li", { class: "empty", text: "Automations are not running on this hub." }));
  }
}

async function start() {
  let refresh = 3000;
  try {
    const resp = await fetch("config.json");
    if (resp.ok) {
      const cfg = await resp.json();
      panel.api = (cfg.api || "/api").replace(/\/$/, "");
      refresh = cfg.refresh_ms || refresh;
    }
  } catch { /* defaults */ }
  await poll();
  setInterval(poll, refresh);
  $("panel-automations").dataset.ready = "true";
}

start();
