// Deliveries (shown when the server has the logistics console routes): the order board in
// columns with counts, the plan in force on the map (one colour per route, numbered stops, time
// windows against ETAs in the side table, drag an order onto another route: the server re-checks
// it with the planner's checks and accepts or refuses with the reason), the end-of-day report and
// the proofs of delivery. Tabs: #/logistics, #/logistics/plan, #/logistics/report, #/logistics/proofs.
import { api, token } from "./api.js";
import { el } from "./dom.js";
import { LiveMap } from "./map.js";
import { showStations } from "./stations.js";

export const ROUTES = ["/api/logistics/board", "/api/logistics/plan", "/api/logistics/report", "/api/plans/{plan}/move"];
const maplibregl = window.maplibregl;
const COLOURS = ["#38bdf8", "#f472b6", "#a3e635", "#fbbf24", "#c084fc", "#fb7185", "#2dd4bf", "#f97316"];
const COLUMNS = [
  ["open", "Imported"], ["planned", "Planned"], ["in_progress", "In progress"],
  ["delivered", "Delivered"], ["failed", "Failed"], ["cancelled", "Cancelled"],
];
const TABS = [["board", "Order board"], ["plan", "Plan on the map"], ["report", "End of day"], ["proofs", "Proofs of delivery"]];
const FINAL = { return_to_depot: "back to the depot", failed: "failed, for the dispatcher" };
const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(0)} %`);
const hhmm = (t) => (t ? t.slice(0, 5) : "—");

export class LogisticsPage {
  constructor(root, { fleet, basemap, theme, role, apiBase }) {
    Object.assign(this, { root, fleet, basemap, theme, role, apiBase });
    this.tab = "board";
    this.toast = el("div", { class: "lg-toast", "data-testid": "move-result", role: "status", hidden: true });
    this.tabs = el("nav", { class: "lg-tabs", "data-testid": "logistics-tabs" },
      ...TABS.map(([id, label]) => el("a", { href: `#/logistics/${id === "board" ? "" : id}`, "data-tab": id, text: label })));
    this.body = el("div", { class: "lg-body" });
    root.replaceChildren(el("div", { class: "page-head" }, el("h1", { text: "Deliveries" }), this.tabs, el("div", { class: "spacer" }),
      el("span", { class: "chip", "data-testid": "plan-chip" })), this.body, this.toast);
  }

  canDispatch() { return ["owner", "dispatcher"].includes(this.role()); }

  open(tab) {
    this.tab = TABS.some(([id]) => id === tab) ? tab : "board";
    for (const a of this.tabs.querySelectorAll("a")) a.classList.toggle("active", a.dataset.tab === this.tab);
    this.root.dataset.tab = this.tab;
    this.root.dataset.loaded = "";
    const done = () => { this.root.dataset.loaded = this.tab; };
    const fail = (e) => { this.body.replaceChildren(el("p", { class: "error", "data-testid": "logistics-error", text: e.message })); done(); };
    ({ board: () => this.board(), plan: () => this.plan(), report: () => this.report(), proofs: () => this.proofs() })[this.tab]().then(done, fail);
  }

  say(text, ok) {
    this.toast.hidden = false;
    this.toast.className = `lg-toast ${ok ? "ok" : "bad"}`;
    this.toast.textContent = text;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { this.toast.hidden = true; }, 9000);
  }

  // ---- the order board ----------------------------------------------------------------------
  async board() {
    const q = this.q ? this.q.value.trim() : "";
    const b = await api(`/logistics/board${q ? `?q=${encodeURIComponent(q)}` : ""}`);
    this.chip(b.plan);
    if (!this.q) this.q = el("input", { type: "search", placeholder: "order or vehicle", "data-testid": "board-search", "aria-label": "search orders", oninput: () => { clearTimeout(this.qt); this.qt = setTimeout(() => this.board(), 250); } });
    const columns = COLUMNS.filter(([id]) => id !== "cancelled" || b.counts.cancelled);
    const grid = el("div", { class: "lg-board", "data-testid": "order-board", style: `grid-template-columns: repeat(${columns.length}, minmax(180px, 1fr))` },
      ...columns.map(([id, label]) => {
        const orders = b.orders.filter((o) => o.column === id);
        return el("section", { class: `lg-col col-${id}`, "data-column": id },
          el("header", {}, el("span", { class: "lg-dot" }), el("h3", { text: label }), el("span", { class: "badge lg-count", "data-testid": `count-${id}`, text: String(b.counts[id]) })),
          el("div", { class: "lg-cards" }, ...orders.map((o) => this.card(o)), orders.length ? null : el("p", { class: "muted small lg-empty", text: "none" })));
      }));
    this.body.replaceChildren(el("div", { class: "lg-toolbar" }, this.q, el("span", { class: "muted small", text: `${b.orders.length} order${b.orders.length === 1 ? "" : "s"}${q ? ` matching “${q}”` : ""}` })), grid);
  }

  card(o) {
    const late = o.eta && o.window && o.window.includes("-") && o.eta.slice(0, 5) > o.window.split("-")[1];
    return el("article", { class: "lg-card", "data-order": o.id },
      el("div", { class: "lg-card-top" }, el("strong", { text: o.id }), el("span", { class: "muted small", text: `${o.weight_kg} kg` })),
      el("div", { class: "small", text: o.vehicle ? `${o.vehicle}${o.stop ? ` · stop ${o.stop}` : ""}` : "not planned" }),
      el("div", { class: "small muted" }, `window ${o.window || "—"}`, o.eta ? el("span", { class: late ? "lg-late" : "" }, ` · ETA ${hhmm(o.eta)}`) : null),
      o.reason ? el("div", { class: "small lg-reason", text: o.reason }) : null,
      // demo-route: a failed order back at dispatch, and when its retry rule lets it go again
      o.status === "failed" && o.retry && !o.final ? el("div", { class: "small muted", "data-testid": "retry", text: `retry ${o.retry}` }) : null,
      // the retry cap (retry.yaml): attempts made of the most allowed; at the cap, what became of it
      o.attempts ? el("div", { class: `small ${o.final ? "lg-final" : "muted"}`, "data-testid": "attempts",
        text: o.final ? `final: attempt ${o.attempts} of ${o.max_attempts} · ${FINAL[o.final] || o.final}` : `attempt ${o.attempts} of ${o.max_attempts}` }) : null);
  }

  chip(plan) {
    const chip = this.root.querySelector("[data-testid='plan-chip']");
    chip.textContent = plan ? `plan #${plan.id} · ${plan.status}` : "no plan yet";
  }

  // ---- the plan on the map ------------------------------------------------------------------
  async plan() {
    let plan;
    try { plan = await api("/logistics/plan"); } catch (e) {
      if (e.status !== 404) throw e;
      this.chip(null);
      this.body.replaceChildren(el("div", { class: "card lg-emptystate", "data-testid": "no-plan" }, el("h2", { text: "No plan yet" }),
        el("p", { class: "muted", text: "Import the day's orders and make a plan (POST /api/plans or anycar fleet plan); it shows here." })));
      return;
    }
    this.current = plan;
    this.chip(plan);
    const b = await api("/logistics/board");
    const status = new Map(b.orders.map((o) => [o.id, o]));
    if (!this.mapBox) {
      this.mapBox = el("div", { class: "lg-map", "data-testid": "plan-map" });
      this.side = el("aside", { class: "lg-side", "data-testid": "plan-side" });
      this.planGrid = el("div", { class: "lg-plan" }, el("div", { class: "lg-map-wrap" }, this.mapBox,
        el("div", { class: "attribution" }, el("a", { href: "basemap.LICENSE.md", target: "_blank", rel: "noopener", text: "© OpenStreetMap contributors, ODbL" }), " · MapLibre · ", this.legsNote = el("span", { "data-testid": "legs-source" }))), this.side);
    }
    this.body.replaceChildren(this.planGrid);
    if (!this.map) {
      this.map = new LiveMap(this.mapBox, { fleet: this.fleet, basemap: this.basemap, theme: this.theme, interactive: true });
      await this.map.ready;
    } else {
      this.map.map.resize();
    }
    this.draw(plan.plan, status, plan.legs || []);
    this.tables(plan, status);
    // The swap stations near the rounds, when the server runs the CSMS (else /stations is a 404).
    api("/stations").then((list) => showStations(this.map.map, list)).catch(() => {});
  }

  draw(body, status, legs) {
    const m = this.map.map;
    for (const marker of this.markers || []) marker.remove();
    this.markers = [];
    const lines = { type: "FeatureCollection", features: [] };
    const bounds = new maplibregl.LngLatBounds();
    const along = new Map(legs.map((l) => [l.vehicle, l]));
    body.routes.forEach((r, i) => {
      const colour = COLOURS[i % COLOURS.length];
      const all = [...(r.fixed || []), ...r.stops];
      // The server's legs along the streets (anycar.roads); straight between stops without them.
      const leg = along.get(r.vehicle);
      const coords = leg && leg.coordinates.length > 1 ? leg.coordinates : [r.stops[0], ...(r.fixed || []), ...r.stops.slice(1)].map((s) => [s.lon, s.lat]);
      coords.forEach((c) => bounds.extend(c));
      lines.features.push({ type: "Feature", properties: { colour, vehicle: r.vehicle, estimate: leg ? leg.estimate : true }, geometry: { type: "LineString", coordinates: coords } });
      let n = 0;
      for (const s of all) {
        if (s.action === "swap") { // demo-route: the planned battery swap, a stop of the route
          const node = el("div", { class: "lg-stop lg-swap", style: `--c: ${colour}`, "data-swap": s.station, title: `swap at ${s.station} · ETA ${hhmm(s.arrival)} · pack held ${s.window}${s.reservation != null ? ` · reservation ${s.reservation}` : ""}`, text: "⚡" });
          this.markers.push(new maplibregl.Marker({ element: node }).setLngLat([s.lon, s.lat]).addTo(m));
          bounds.extend([s.lon, s.lat]); // in view, even where the street ends short of the bay
          continue;
        }
        if (!s.order) continue;
        n += 1;
        const st = status.get(s.order);
        const node = el("div", { class: `lg-stop ${st ? `st-${st.column}` : ""}`, style: `--c: ${colour}`, "data-stop": s.order, title: `${s.order} · ETA ${hhmm(s.arrival)} · window ${s.window}`, text: String(n) });
        this.markers.push(new maplibregl.Marker({ element: node }).setLngLat([s.lon, s.lat]).addTo(m));
      }
    });
    const depot = body.routes[0] && body.routes[0].stops[0];
    if (depot) this.markers.push(new maplibregl.Marker({ element: el("div", { class: "lg-depot", title: "depot", text: "D" }) }).setLngLat([depot.lon, depot.lat]).addTo(m));
    if (m.getSource("plan")) m.getSource("plan").setData(lines);
    else {
      m.addSource("plan", { type: "geojson", data: lines });
      m.addLayer({ id: "plan-casing", type: "line", source: "plan", layout: { "line-join": "round", "line-cap": "round" }, paint: { "line-color": "#05080d", "line-width": 7, "line-opacity": 0.55 } });
      m.addLayer({ id: "plan-line", type: "line", source: "plan", layout: { "line-join": "round", "line-cap": "round" }, paint: { "line-color": ["get", "colour"], "line-width": 4 } });
    }
    if (!bounds.isEmpty()) m.fitBounds(bounds, { padding: 60, duration: 0, maxZoom: 16 });
    const roads = legs.length && legs.every((l) => !l.estimate);
    this.legsNote.textContent = roads ? "legs along the streets (road network)" : legs.length ? "legs along the streets, straight where off the road network" : "legs drawn straight between stops";
  }

  tables(plan, status) {
    const body = plan.plan;
    const dispatch = this.canDispatch() && ["proposed", "accepted"].includes(plan.status);
    const head = el("div", { class: "lg-side-head" },
      el("h2", { text: `${body.routes.length} routes · ${(body.distance_m / 1000).toFixed(1)} km` }),
      el("p", { class: "muted small", "data-testid": "drag-hint", text: dispatch ? "Drag an order onto another route: the server re-checks windows, load, shift and battery." : "Read-only: your role may not move orders." }));
    const routes = body.routes.map((r, i) => {
      const colour = COLOURS[i % COLOURS.length];
      let n = 0;
      const rows = [...(r.fixed || []), ...r.stops].filter((s) => s.order || s.action === "swap").map((s) => {
        if (s.action === "swap") { // the swap stop in its place: station, the window its pack is held, the reservation
          return el("tr", { "data-swap": s.station, class: "done lg-swap-row" },
            el("td", {}, el("span", { class: "lg-num", style: `--c: ${colour}`, text: "⚡" })),
            el("td", { class: "strong", text: `swap · ${s.station}` }),
            el("td", { class: "mono", text: s.window || "—" }),
            el("td", { class: "mono", text: hhmm(s.arrival) + (s.start && s.arrival !== s.start ? ` → ${hhmm(s.start)}` : "") }),
            el("td", {}, el("span", { class: "pill", "data-testid": "swap-reservation", title: s.reservation != null ? `reservation ${s.reservation}` : "", text: s.reservation != null ? `R${s.reservation}${s.reservation_status ? ` · ${s.reservation_status}` : ""}` : s.reservation_status === "to reserve" ? "to reserve" : "no reservation" })));
        }
        n += 1;
        const st = status.get(s.order);
        const open = st && ["planned", "in_progress", "open"].includes(st.column);
        const end = (s.window || "").split("-")[1];
        const late = end && s.arrival.slice(0, 5) > end;
        const wait = s.start && s.arrival !== s.start;
        return el("tr", { "data-order": s.order, draggable: dispatch && open ? "true" : "false", class: dispatch && open ? "drag" : "done",
          ondragstart: (e) => { e.dataTransfer.setData("text/plain", s.order); e.dataTransfer.effectAllowed = "move"; } },
          el("td", {}, el("span", { class: "lg-num", style: `--c: ${colour}`, text: String(n) })),
          el("td", { class: "strong", text: s.order }),
          el("td", { class: "mono", text: s.window || "—" }),
          el("td", { class: `mono ${late ? "lg-late" : ""}`, text: hhmm(s.arrival) + (wait ? ` → ${hhmm(s.start)}` : "") }),
          el("td", {}, el("span", { class: `pill st-${st ? st.column : "open"}`, text: st ? st.column.replace("_", " ") : "?" })));
      });
      const section = el("section", { class: "lg-route", "data-route": r.vehicle, style: `--c: ${colour}`,
        ondragover: (e) => { if (dispatch) { e.preventDefault(); section.classList.add("over"); } },
        ondragleave: () => section.classList.remove("over"),
        ondrop: (e) => { e.preventDefault(); section.classList.remove("over"); this.move(e.dataTransfer.getData("text/plain"), r.vehicle.split("#")[0]); } },
        el("header", {}, el("span", { class: "lg-swatch" }), el("strong", { text: r.vehicle }),
          el("span", { class: "muted small", text: `${(r.distance_m / 1000).toFixed(1)} km · ${r.energy_kwh.toFixed(2)} kWh · SoC at end ${(r.soc_end * 100).toFixed(0)} %` })),
        el("table", { class: "table lg-stops" }, el("thead", {}, el("tr", {}, ...["#", "Order", "Window", "ETA", "Status"].map((t) => el("th", { text: t })))), el("tbody", {}, ...rows)));
      return section;
    });
    const unserved = body.unservable.length ? el("section", { class: "lg-route lg-unserved", "data-testid": "unservable" }, el("header", {}, el("strong", { text: "Not in any route" })),
      el("ul", {}, ...body.unservable.map((u) => el("li", {}, el("strong", { text: u.order }), ` — ${u.reason}`)))) : null;
    this.side.replaceChildren(head, ...routes, ...(unserved ? [unserved] : []));
  }

  async move(order, vehicle) {
    if (!order || !this.current) return;
    try {
      const r = await fetchMove(this.apiBase, this.current.id, order, vehicle);
      // what became of a swap stop on the routes it changed (re-timed, moved, removed and why);
      // in the plan in force, the changed routes sent to their hubs (logistics, session 7)
      const sent = (r.body.pushed || []).map((p) => p.skipped ? `route for ${p.vehicle} not sent: ${p.skipped}` : `route v${p.version} sent to ${p.vehicle}`);
      this.say([r.body.reason, ...(r.body.swap || []), ...sent].join(" · "), r.body.accepted);
      if (r.body.accepted) await this.plan();
    } catch (e) { this.say(e.message, false); }
  }

  // ---- the end-of-day report ----------------------------------------------------------------
  async report() {
    if (!this.day) this.day = el("input", { type: "date", "data-testid": "report-day", value: new Date().toISOString().slice(0, 10), onchange: () => this.report().catch((e) => this.say(e.message, false)) });
    const r = await api(`/logistics/report?day=${encodeURIComponent(this.day.value)}`);
    const kpi = (label, value, sub, test) => el("div", { class: "lg-kpi", "data-testid": test }, el("div", { class: "muted small", text: label }), el("div", { class: "lg-kpi-v", text: value }), el("div", { class: "muted small", text: sub }));
    const rate = r.on_time_rate;
    this.body.replaceChildren(
      el("div", { class: "lg-toolbar" }, el("label", { class: "muted small", text: "Day" }), this.day, el("span", { class: "muted small", text: `plan #${r.plan ?? "—"} · ${r.basis}` })),
      el("div", { class: "lg-kpis" },
        kpi("On time", pct(rate), `${r.on_time} of ${r.delivered} delivered`, "kpi-on-time"),
        kpi("Km per order", r.km_per_order === null ? "—" : `${r.km_per_order.toFixed(2)} km`, `${r.planned_km} km planned`, "kpi-km"),
        kpi("kWh per order", r.kwh_per_order === null ? "—" : `${r.kwh_per_order.toFixed(3)} kWh`, `${r.planned_kwh} kWh planned`, "kpi-kwh"),
        kpi("Delivered", String(r.delivered), `of ${r.orders} orders`, "kpi-delivered"),
        kpi("Failed", String(r.failed), r.failed ? "see below" : "none", "kpi-failed")),
      el("div", { class: "lg-two" },
        el("section", { class: "card" }, el("h2", { text: "Failed deliveries and why" }),
          r.failures.length ? el("table", { class: "table", "data-testid": "failures" }, el("thead", {}, el("tr", {}, ...["Order", "Vehicle", "At", "Why"].map((t) => el("th", { text: t })))),
            el("tbody", {}, ...r.failures.map((f) => el("tr", {}, el("td", { class: "strong", text: f.order }), el("td", { text: f.vehicle || "—" }), el("td", { class: "mono", text: f.at }), el("td", { text: f.reason })))))
            : el("p", { class: "muted", text: "No failed deliveries." })),
        el("section", { class: "card" }, el("h2", { text: "Delivered late" }),
          r.late.length ? el("table", { class: "table", "data-testid": "late" }, el("thead", {}, el("tr", {}, ...["Order", "Delivered", "Windows"].map((t) => el("th", { text: t })))),
            el("tbody", {}, ...r.late.map((l) => el("tr", {}, el("td", { class: "strong", text: l.order }), el("td", { class: "mono", text: l.delivered }), el("td", { class: "mono", text: l.windows })))))
            : el("p", { class: "muted", text: "Every delivery inside its window." }))),
      el("section", { class: "card" }, el("h2", { text: "Per vehicle" }),
        el("table", { class: "table", "data-testid": "report-vehicles" }, el("thead", {}, el("tr", {}, ...["Vehicle", "Orders", "Delivered", "Failed", "km", "kWh"].map((t, i) => el("th", { class: i ? "num" : "", text: t })))),
          el("tbody", {}, ...r.vehicles.map((v) => el("tr", {}, el("td", { class: "strong", text: v.vehicle }), ...[v.orders, v.delivered, v.failed, v.km.toFixed(2), v.kwh.toFixed(3)].map((x) => el("td", { class: "num", text: String(x) }))))))));
  }

  // ---- proofs of delivery -------------------------------------------------------------------
  async proofs() {
    const p = await api("/logistics/proofs");
    if (!p.available || !p.proofs.length) {
      this.body.replaceChildren(el("div", { class: "card lg-emptystate", "data-testid": "no-proofs" },
        el("div", { class: "lg-empty-icon", "aria-hidden": "true", text: "▣" }), el("h2", { text: "No proofs yet" }),
        el("p", { class: "muted", text: "Proof-of-delivery records (door open → close, the cargo weight drop, a cargo camera photo, the recipient's PIN) appear here once the hubs send them. None are stored on this server yet." })));
      return;
    }
    const when = (ts) => (ts ? new Date(ts * 1000).toLocaleString() : "—");
    const PIN = { right: "PIN right", wrong: "wrong PIN", "none entered": "no PIN entered", "not asked": "no PIN asked", "entered, none asked": "PIN entered, none asked" };
    const rows = p.proofs.map((pod) => {
      const rec = pod.record || {};
      const checks = pod.checks || {};
      const picture = (rec.photo && rec.photo.thumbnail) || (rec.signature_image && rec.signature_image.thumbnail);
      const photo = typeof picture === "string" && picture.startsWith("data:image/")
        ? el("img", { class: "lg-pod-photo", "data-testid": "pod-photo", src: picture, alt: `${rec.photo ? "photo" : "signature"} at ${pod.order}`, title: rec.photo && rec.photo.sha256 ? `sha256 ${rec.photo.sha256}` : "" })
        : el("span", { class: "muted", text: "no photo" });
      const expected = checks.expected_kg === null || checks.expected_kg === undefined ? "" : ` of ${checks.expected_kg} kg`;
      const weight = rec.weight && rec.weight.drop_kg != null ? `${rec.weight.drop_kg} kg${expected}` : "—";
      const door = rec.door ? (rec.door.opened && rec.door.closed ? "opened → closed" : rec.door.opened ? "opened, not closed" : "never opened") : "—";
      const pos = rec.position;
      const where = pos ? `${Number(pos.lat).toFixed(5)}, ${Number(pos.lon).toFixed(5)}${checks.distance_m === null || checks.distance_m === undefined ? "" : ` · ${checks.distance_m} m from the stop`}` : "no position";
      const pin = PIN[checks.pin] || "—";
      const recipient = rec.signature_image ? `${pin} · signed on the phone` : pin;
      const exceptions = (pod.exceptions || []).map((x) => (typeof x === "string" ? x : x.reason || x.type || JSON.stringify(x)));
      return el("tr", { "data-testid": "pod-row", "data-order": pod.order, class: exceptions.length ? "lg-pod-exception" : "" },
        el("td", { class: "strong", text: pod.order }), el("td", { text: pod.vehicle }), el("td", { class: "mono", text: when(pod.ts) }),
        el("td", { text: pod.outcome }),
        el("td", { "data-testid": "pod-signed", class: "small", text: `${pod.verified ? "✓" : "✗"} ${checks.signed_by || pod.key_id}` }),
        el("td", { "data-testid": "pod-door", text: door }), el("td", { "data-testid": "pod-weight", class: "num", text: weight }),
        el("td", { "data-testid": "pod-pin", class: checks.pin === "wrong" || checks.pin === "none entered" ? "lg-late" : "", text: recipient }),
        el("td", { "data-testid": "pod-position", class: "mono small", text: where }),
        el("td", {}, photo),
        el("td", { "data-testid": "pod-exceptions", text: exceptions.join("; ") || "none" }));
    });
    const bad = p.proofs.filter((x) => (x.exceptions || []).length).length;
    this.body.replaceChildren(el("div", { class: "card" }, el("h2", { text: `Proofs of delivery (${p.proofs.length}${bad ? ` · ${bad} with exceptions` : ""})` }),
      el("table", { class: "table", "data-testid": "pods" },
        el("thead", {}, el("tr", {}, ...["Order", "Vehicle", "At", "Outcome", "Signed by", "Door", "Weight drop", "Recipient", "Position", "Photo", "Exceptions"].map((t) => el("th", { text: t })))),
        el("tbody", {}, ...rows))));
  }
}

async function fetchMove(base, plan, order, vehicle) {
  // A refusal is an answer (409 with the reason), not an error: read it either way.
  const response = await fetch(`${base}/plans/${encodeURIComponent(plan)}/move`, {
    method: "POST", headers: { Authorization: `Bearer ${token.get() || ""}`, "Content-Type": "application/json" },
    body: JSON.stringify({ order, vehicle }),
  });
  const body = await response.json();
  if (response.status === 200 || response.status === 409) return { body };
  throw new Error(body.error ? body.error.message : `${response.status}`);
}
