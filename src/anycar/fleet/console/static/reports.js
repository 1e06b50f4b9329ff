// The reports page (shown when the server has /api/reports/fleet): the fleet's day or ISO week,
// one row per vehicle with distance, driving time, trips, stops, energy, utilisation and alerts,
// the totals, distance bars, and the same report as CSV or as the server's printable page.
import { api, token } from "./api.js";
import { el } from "./dom.js";

export const ROUTES = ["/api/reports/fleet"];

function isoWeek(d) {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const start = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
  return `${t.getUTCFullYear()}-W${String(Math.ceil(((t - start) / 86400000 + 1) / 7)).padStart(2, "0")}`;
}

const hours = (s) => `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;

export class ReportsPage {
  constructor(root, base) {
    this.root = root;
    this.base = base;
    this.kind = el("select", { "data-testid": "report-kind", "aria-label": "period", onchange: () => this.defaults() },
      el("option", { value: "day", text: "Day" }), el("option", { value: "week", text: "ISO week" }));
    this.when = el("input", { type: "text", "data-testid": "report-when", "aria-label": "day or week", size: "12", onchange: () => this.load() });
    this.error = el("p", { class: "error", "data-testid": "report-error" });
    this.summary = el("dl", { class: "summary", "data-testid": "report-totals" });
    this.rows = el("tbody", { "data-testid": "report-rows" });
    this.bars = el("div", { class: "bars", "data-testid": "report-bars" });
    const download = (format, label) => el("button", { type: "button", "data-testid": `report-${format}`, text: label, onclick: () => this.download(format) });
    root.replaceChildren(
      el("div", { class: "page-head" }, el("h1", { text: "Reports" }), this.kind, this.when,
        el("button", { type: "button", class: "primary", text: "Show", onclick: () => this.load() }),
        el("div", { class: "spacer" }), download("csv", "Download CSV"), download("html", "Printable page ↗"), this.error),
      el("section", { class: "card" }, this.summary),
      el("section", { class: "card" }, el("h2", { text: "Distance per vehicle" }), this.bars),
      el("div", { class: "table-wrap" }, el("table", { class: "table" },
        el("thead", {}, el("tr", {}, ...["Vehicle", "Brand", "km", "Driving", "Trips", "Stops", "kWh", "kWh/100 km", "Max km/h", "Utilisation", "Alerts"]
          .map((t, i) => el("th", { class: i > 1 ? "num" : "", text: t })))),
        this.rows)));
    this.defaults();
  }

  defaults() {
    const now = new Date();
    this.when.value = this.kind.value === "day" ? now.toISOString().slice(0, 10) : isoWeek(now);
  }

  query(format) { return `/reports/fleet?${this.kind.value}=${encodeURIComponent(this.when.value.trim())}&format=${format}`; }

  async load() {
    this.error.textContent = "";
    let r;
    try { r = await api(this.query("json")); } catch (e) { this.error.textContent = e.message; return; }
    const t = r.totals;
    const fact = (label, value) => el("div", {}, el("dt", { text: label }), el("dd", { text: value }));
    this.summary.replaceChildren(fact("Vehicles", String(t.vehicles)), fact("Distance", `${t.distance_km.toFixed(1)} km`),
      fact("Driving", hours(t.driving_s)), fact("Trips", String(t.trips)), fact("Stops", String(t.stops)),
      fact("Energy", t.energy_kwh === null ? "—" : `${t.energy_kwh.toFixed(1)} kWh`), fact("Alerts", String(t.alerts)));
    const max = Math.max(0.001, ...r.vehicles.map((v) => v.distance_km));
    const top = [...r.vehicles].sort((a, b) => b.distance_km - a.distance_km).slice(0, 20);
    this.bars.replaceChildren(...top.map((v) => el("div", { class: "bar-row" },
      el("span", { class: "bar-label", text: v.vehicle }),
      el("span", { class: "bar" }, el("span", { class: "bar-fill", style: `width:${(100 * v.distance_km) / max}%` })),
      el("span", { class: "num", text: `${v.distance_km.toFixed(2)} km` }))));
    this.rows.replaceChildren(...r.vehicles.map((v) => el("tr", { "data-vehicle": v.vehicle },
      el("td", { class: "strong", text: v.vehicle }), el("td", { text: v.brand }),
      el("td", { class: "num", text: v.distance_km.toFixed(2) }), el("td", { class: "num", text: hours(v.driving_s) }),
      el("td", { class: "num", text: String(v.trips) }), el("td", { class: "num", text: String(v.stops) }),
      el("td", { class: "num", text: v.energy_kwh === null ? "—" : v.energy_kwh.toFixed(2) }),
      el("td", { class: "num", text: v.kwh_per_100km === null || v.kwh_per_100km === undefined ? "—" : v.kwh_per_100km.toFixed(1) }),
      el("td", { class: "num", text: v.max_speed_kmh === null ? "—" : v.max_speed_kmh.toFixed(0) }),
      el("td", { class: "num", text: `${(100 * v.utilisation).toFixed(1)} %` }), el("td", { class: "num", text: String(v.alerts) }))));
    this.rows.dataset.count = String(r.vehicles.length);
    this.root.dataset.loaded = "true";
  }

  // The token travels in the header, so the file is fetched here and handed to the browser.
  async download(format) {
    const response = await fetch(this.base + this.query(format), { headers: { Authorization: `Bearer ${token.get()}` } });
    if (!response.ok) { this.error.textContent = `${response.status} ${response.statusText}`; return; }
    const url = URL.createObjectURL(await response.blob());
    if (format === "html") window.open(url, "_blank", "noopener");
    else el("a", { href: url, download: `fleet-report-${this.when.value}.csv` }).click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }
}
