// One vehicle's page: who it is, where it is now and where it went today (its track on the
// map), its live signals, its events, and a link to its cabin dashboard.
import { api } from "./api.js";
import { el } from "./dom.js";
import { iconUrl } from "./icons.js";
import { ago } from "./fleet.js";
import { LiveMap } from "./map.js";

const SIGNALS_MS = 5000;

function today() { return new Date().toISOString().slice(0, 10); }

function km(points) {
  let d = 0;
  for (let i = 1; i < points.length; i += 1) {
    const a = points[i - 1], b = points[i];
    const r = Math.PI / 180, x = (b.lon - a.lon) * r * Math.cos(((a.lat + b.lat) / 2) * r), y = (b.lat - a.lat) * r;
    d += Math.hypot(x, y) * 6371.0088;
  }
  return d;
}

function time(ts) { return ts ? new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }) : "—"; }

function valueText(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(Math.abs(v) >= 1000 ? 6 : 7)));
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

export function dashboardLink(template, v) {
  if (!template) return null;
  return template.replaceAll("{vehicle}", encodeURIComponent(v.id)).replaceAll("{vin}", encodeURIComponent(v.vin));
}

export class VehiclePage {
  constructor(root, { fleet, basemap, theme, routes }) {
    Object.assign(this, { root, fleet, basemap, theme, routes });
    this.track = [];
    this.cleanup = [];
  }

  async open(id) {
    this.close();
    const v = this.fleet.vehicles.get(id);
    const root = this.root;
    if (!v) {
      root.replaceChildren(el("div", { class: "card wide empty", "data-testid": "vehicle-missing", text: `No vehicle ${id} in this fleet.` }));
      return;
    }
    this.id = id;
    const types = this.fleet.config.vehicles.types;
    const href = dashboardLink(this.fleet.config.dashboard_url, v);
    this.head = el("div", { class: "vehicle-facts" });
    this.signals = el("tbody", { "data-testid": "signals" });
    this.events = el("ul", { class: "events", "data-testid": "vehicle-events" });
    this.summary = el("dl", { class: "summary", "data-testid": "today" });
    const mapBox = el("div", { class: "map small-map", "data-testid": "vehicle-map" });
    root.replaceChildren(
      el("div", { class: "page-head" },
        el("a", { href: "#/vehicles", class: "back", text: "← Vehicles" }),
        el("img", { src: iconUrl(types[v.type].icon, this.fleet.stateOf(v)), alt: "", width: "34", height: "34", class: "head-icon" }),
        el("div", {}, el("h1", { "data-testid": "vehicle-title", text: v.id }), el("div", { class: "muted", text: `${v.brand} · ${types[v.type].label} · VIN ${v.vin}` })),
        el("div", { class: "spacer" }),
        el("a", { class: "button", href: `#/map?vehicle=${encodeURIComponent(v.id)}`, text: "Show on live map" }),
        href
          ? el("a", { class: "button primary", href, target: "_blank", rel: "noopener", "data-testid": "dashboard-link", text: "Open cabin dashboard ↗" })
          : el("span", { class: "button disabled", "data-testid": "dashboard-link", title: "anycar fleet serve --dashboard-url TEMPLATE sets where the hubs' dashboards are", text: "Cabin dashboard: not configured" })),
      el("div", { class: "vehicle-grid" },
        el("section", { class: "card", "data-testid": "vehicle-now" }, el("h2", { text: "Now" }), this.head),
        el("section", { class: "card map-card" }, el("h2", { text: "Today's track" }), mapBox, this.summary),
        el("section", { class: "card" }, el("h2", { text: "Live signals" }),
          el("div", { class: "table-wrap short" }, el("table", { class: "table compact" },
            el("thead", {}, el("tr", {}, el("th", { text: "Signal" }), el("th", { class: "num", text: "Value" }), el("th", { text: "At" }))), this.signals))),
        el("section", { class: "card" }, el("h2", { text: "Events" }), this.events),
        ...this.optionalCards()),
    );
    this.renderHead();
    this.map = new LiveMap(mapBox, { fleet: this.fleet, basemap: this.basemap, theme: this.theme, showAll: false });
    this.map.select(id);
    this.cleanup.push(this.fleet.onPosition((veh, msg) => {
      if (veh.id !== this.id) return;
      this.track.push({ ts: msg.ts, lat: msg.lat, lon: msg.lon, speed: msg.speed });
      this.map.moved(msg);
      this.map.showTrack(this.track);
      this.renderHead();
      this.renderSummary();
    }));
    await this.map.ready;
    await Promise.all([this.loadTrack(), this.loadSignals(), this.loadEvents(), this.loadOptional().catch(() => {})]);
    const timer = setInterval(() => this.loadSignals().catch(() => {}), SIGNALS_MS);
    this.cleanup.push(() => clearInterval(timer));
    root.dataset.loaded = "true";
  }

  // Trips and fitted accessories: when the server has their routes (fleet-domain, fleet-commands).
  optionalCards() {
    const cards = [];
    this.trips = null;
    this.accessories = null;
    if (this.routes.has("/api/vehicles/{vehicle}/trips")) {
      this.trips = el("tbody", { "data-testid": "vehicle-trips" });
      cards.push(el("section", { class: "card" }, el("h2", { text: "Trips today" }),
        el("div", { class: "table-wrap short" }, el("table", { class: "table compact" },
          el("thead", {}, el("tr", {}, ...["Start", "End", "km", "max km/h", "SoC"].map((t) => el("th", { text: t })))), this.trips))));
    }
    if (this.routes.has("/api/vehicles/{vehicle}/accessories")) {
      this.accessories = el("tbody", { "data-testid": "vehicle-accessories" });
      cards.push(el("section", { class: "card" }, el("h2", { text: "Fitted accessories" }),
        el("div", { class: "table-wrap short" }, el("table", { class: "table compact" },
          el("thead", {}, el("tr", {}, ...["Accessory", "Mount", "Firmware", "Status"].map((t) => el("th", { text: t })))), this.accessories))));
    }
    return cards;
  }

  async loadOptional() {
    const id = encodeURIComponent(this.id);
    const none = (n, text) => [el("tr", {}, el("td", { colspan: String(n), class: "empty", text }))];
    if (this.trips) {
      const trips = await api(`/vehicles/${id}/trips?day=${today()}`);
      this.trips.replaceChildren(...(trips.length ? trips.map((t) => el("tr", { "data-trip": String(t.id) },
        el("td", { text: time(t.start_ts) }), el("td", { text: t.open ? "under way" : time(t.end_ts) }),
        el("td", { class: "num", text: (t.distance_m / 1000).toFixed(2) }),
        el("td", { class: "num", text: typeof t.max_speed === "number" ? t.max_speed.toFixed(0) : "—" }),
        el("td", { text: typeof t.soc_start === "number" ? `${t.soc_start.toFixed(0)} → ${typeof t.soc_end === "number" ? t.soc_end.toFixed(0) : "…"} %` : "—" })))
        : none(5, "No trips today.")));
    }
    if (this.accessories) {
      const fitted = await api(`/vehicles/${id}/accessories`);
      this.accessories.replaceChildren(...(fitted.length ? fitted.map((a) => el("tr", { "data-accessory": a.id },
        el("td", { text: `${a.vendor || ""} ${a.model || a.id}`.trim() }), el("td", { text: a.mount || "—" }),
        el("td", { class: "mono", text: a.firmware || "—" }), el("td", { text: a.status || "—" })))
        : none(4, "The hub reported no accessories.")));
    }
  }

  renderHead() {
    const v = this.fleet.vehicles.get(this.id);
    if (!v) return;
    const p = v.position;
    const state = this.fleet.stateOf(v);
    const fact = (label, value, testid) => el("div", {}, el("dt", { text: label }), el("dd", { "data-testid": testid, text: value }));
    this.head.replaceChildren(el("dl", { class: "facts" },
      fact("State", state, "vehicle-state"),
      fact("Battery", typeof v.soc === "number" ? `${v.soc.toFixed(1)} %` : "—", "vehicle-soc"),
      fact("Speed", p && typeof p.speed === "number" ? `${p.speed.toFixed(0)} km/h` : "—", "vehicle-speed"),
      fact("Heading", p && typeof p.heading === "number" ? `${Math.round(p.heading)}°` : "—", "vehicle-heading"),
      fact("Position", p ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : "—", "vehicle-position"),
      fact("Last seen", ago(v.last_seen), "vehicle-last-seen"),
      fact("Connects by", v.kind === "tracker" ? "OsmAnd tracker" : "hub uplink (MQTT)", "vehicle-kind")));
  }

  renderSummary() {
    const t = this.track;
    const max = t.reduce((m, p) => (typeof p.speed === "number" && p.speed > m ? p.speed : m), 0);
    const fact = (label, value) => el("div", {}, el("dt", { text: label }), el("dd", { text: value }));
    this.summary.replaceChildren(
      fact("Distance", `${km(t).toFixed(2)} km`),
      fact("Positions", String(t.length)),
      fact("First / last", t.length ? `${time(t[0].ts)} – ${time(t[t.length - 1].ts)}` : "—"),
      fact("Max speed", t.length ? `${max.toFixed(0)} km/h` : "—"));
  }

  async loadTrack() {
    this.track = await api(`/vehicles/${encodeURIComponent(this.id)}/track?day=${today()}`);
    this.map.showTrack(this.track);
    if (this.track.length) this.map.fitTo(this.track);
    else this.map.flyTo(this.fleet.vehicles.get(this.id));
    this.map.changed();
    this.renderSummary();
  }

  async loadSignals() {
    const rows = await api(`/vehicles/${encodeURIComponent(this.id)}/signals`);
    this.signals.replaceChildren(...(rows.length
      ? rows.map((s) => el("tr", { "data-path": s.path },
        el("td", { class: "mono", text: s.path.replace(/^Vehicle\./, "") }), el("td", { class: "num", text: valueText(s.value) }), el("td", { text: time(s.ts) })))
      : [el("tr", {}, el("td", { colspan: "3", class: "empty", text: "No signals in the last hour." }))]));
  }

  async loadEvents() {
    const rows = await api(`/events?vehicle=${encodeURIComponent(this.id)}&limit=50`);
    this.events.replaceChildren(...(rows.length ? rows.map((e) => this.eventItem(e)) : [el("li", { class: "empty", text: "No events." })]));
  }

  eventItem(e) {
    return el("li", { class: `event ${e.type}` },
      el("span", { class: "ev-time", text: time(e.ts) }),
      el("span", { class: "ev-type", text: e.type }),
      el("span", { class: "ev-text", text: [e.subject, e.message].filter(Boolean).join(": ") || "—" }));
  }

  liveEvent(msg) {
    if (msg.vehicle !== this.id || !this.events) return;
    const empty = this.events.querySelector(".empty");
    if (empty) empty.remove();
    this.events.prepend(this.eventItem(msg));
  }

  close() {
    for (const fn of this.cleanup.splice(0)) fn();
    if (this.map) { this.map.destroy(); this.map = null; }
    this.id = null;
    delete this.root.dataset.loaded;
  }
}
