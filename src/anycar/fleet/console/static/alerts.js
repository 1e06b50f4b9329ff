// The alerts page (shown when the server has /api/alerts): open, acknowledged or all alerts,
// newest first, acknowledged with one click (owner, dispatcher); new ones arrive on the live feed.
import { api } from "./api.js";
import { el } from "./dom.js";
import { ago } from "./fleet.js";

export const ROUTES = ["/api/alerts", "/api/alerts/{alert}/ack"];

export class AlertsPage {
  constructor(root, { onCount }) {
    this.root = root;
    this.onCount = onCount;
    this.state = "open";
    this.rows = el("tbody", { "data-testid": "alert-rows" });
    this.error = el("p", { class: "error", "data-testid": "alerts-error" });
    const select = el("select", { "data-filter": "alert-state", "aria-label": "alert state", onchange: (e) => { this.state = e.target.value; this.load(); } },
      ...["open", "acknowledged", "withdrawn", "all"].map((s) => el("option", { value: s, text: s })));
    root.replaceChildren(
      el("div", { class: "page-head" }, el("h1", { text: "Alerts" }), select, this.error),
      el("div", { class: "table-wrap" }, el("table", { class: "table", "data-testid": "alert-table" },
        el("thead", {}, el("tr", {}, ...["Time", "Vehicle", "Alert", "Severity", "Message", "State", ""].map((t) => el("th", { text: t })))),
        this.rows)));
  }

  async load() {
    try {
      const rows = await api(`/alerts?state=${this.state}&limit=200`);
      this.render(rows);
      if (this.state === "open") this.onCount(rows.length);
      else this.onCount((await api("/alerts?state=open&limit=1000")).length);
    } catch (e) { this.error.textContent = e.message; }
  }

  render(rows) {
    this.rows.replaceChildren(...(rows.length ? rows.map((a) => this.row(a))
      : [el("tr", {}, el("td", { colspan: "7", class: "empty", text: `No ${this.state === "all" ? "" : `${this.state} `}alerts.` }))]));
  }

  row(a) {
    const acked = a.ack_ts !== null && a.ack_ts !== undefined;
    const ack = el("button", { type: "button", class: "small-button", "data-ack": String(a.id), text: "Acknowledge",
      onclick: async (e) => {
        e.stopPropagation();
        try { await api(`/alerts/${a.id}/ack`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }); this.load(); }
        catch (err) { this.error.textContent = err.message; }
      } });
    return el("tr", { "data-alert": String(a.id), class: a.withdrawn_ts ? "acked withdrawn" : acked ? "acked" : "" },
      el("td", { text: new Date(a.ts * 1000).toLocaleTimeString([], { hour12: false }) }),
      el("td", {}, el("a", { href: `#/vehicles/${encodeURIComponent(a.vehicle)}`, text: a.vehicle })),
      el("td", { class: "strong", text: a.type }, a.late ? el("span", { class: "severity info", "data-late": String(a.id), title: `raised ${ago(a.raised_ts)} from a sample that arrived late`, text: "late" }) : null),
      el("td", {}, el("span", { class: `severity ${a.severity}`, text: a.severity })),
      el("td", { text: a.message }),
      el("td", { class: "muted", "data-alert-status": String(a.id), text: status(a, acked) }),
      el("td", {}, acked || a.withdrawn_ts ? null : ack));
  }
}

// fleet-domain: an alert late data made false says so and why; one raised from late data says when it was raised
function status(a, acked) {
  if (a.withdrawn_ts) return `withdrawn ${ago(a.withdrawn_ts)}: ${a.withdrawn_reason}`;
  if (acked) return `acknowledged by ${a.ack_by} ${ago(a.ack_ts)}`;
  return a.cleared_ts ? "cleared" : "open";
}
