// Swap stations (shown when the server runs the CSMS): the stations on the live map (a marker
// with the ready packs and the queue), the stations page, one station (slots with each pack's
// SoC, swaps today, grid power) and a pack's battery passport (its history across stations and
// vehicles). Pages: #/stations, #/stations/ID, #/packs/SERIAL.
import { api } from "./api.js";
import { el } from "./dom.js";

export const ROUTES = ["/api/stations", "/api/stations/{station}", "/api/packs/{serial}"];
const maplibregl = window.maplibregl;
const time = (ts) => (ts ? new Date(ts * 1000).toISOString().slice(11, 19) : "—");
const when = (ts) => (ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) : "—");
const soc = (x) => (typeof x === "number" ? `${x.toFixed(0)} %` : "—");
const EVENTS = { registered: "Registered", into_slot: "Into a station slot", out_of_slot: "Out of a slot", into_vehicle: "Into a vehicle", retired: "Retired", state: "State" };

// Station markers on a MapLibre map: one DOM marker per station with a site.
export function showStations(map, stations) {
  for (const m of map.__stationMarkers || []) m.remove();
  map.__stationMarkers = stations.filter((s) => typeof s.lat === "number").map((s) => {
    const node = el("a", { class: `st-marker ${s.online ? "" : "offline"}`, href: `#/stations/${encodeURIComponent(s.id)}`, "data-station": s.id,
      title: `${s.name} · ${s.ready} ready · queue ${s.queue}${s.online ? "" : " · offline"}` },
      el("span", { class: "st-bolt", "aria-hidden": "true", text: "⚡" }),
      el("span", { class: "st-ready", text: String(s.ready) }), el("span", { class: "st-label", text: "ready" }),
      el("span", { class: "st-queue", text: s.queue ? `${s.queue} queued` : "" }));
    return new maplibregl.Marker({ element: node, anchor: "bottom" }).setLngLat([s.lon, s.lat]).addTo(map);
  });
}

function slotCard(s) {
  const state = s.pack ? s.state || "unknown" : "empty";
  const level = typeof s.soc === "number" ? Math.max(0, Math.min(100, s.soc)) : 0;
  return el("div", { class: `slot slot-${state}`, "data-slot": String(s.evse), "data-testid": "slot" },
    el("div", { class: "slot-top" }, el("span", { class: "muted small", text: `slot ${s.evse}` }), el("span", { class: `pill st-${state}`, text: state })),
    s.pack ? el("a", { class: "slot-pack mono", href: `#/packs/${encodeURIComponent(s.pack)}`, text: s.pack }) : el("div", { class: "muted small slot-pack", text: s.status }),
    el("div", { class: "gauge" }, el("i", { style: `width: ${level}%` })),
    el("div", { class: "slot-foot small" }, el("strong", { text: soc(s.soc) }), el("span", { class: "muted", text: s.soh ? `SoH ${s.soh.toFixed(0)} %` : "" })));
}

// The station's reservations: open ones first (a "queued" one is held by the CSMS while the
// station is offline and sent when it connects), then today's that ended, each with the
// station's answer and why it ended as it did.
const RS_LABEL = { queued: "held (station offline)", pending: "sent, no answer yet", active: "active", rejected: "rejected",
  cancel_queued: "cancel held (station offline)", cancelled: "cancelled", used: "used", expired: "expired" };
// With ``onCancel`` (a dispatcher's console), each open reservation has a Cancel button.
function reservationsCard(list, onCancel) {
  const cancel = (r) => (onCancel && r.open && r.status !== "cancel_queued"
    ? el("button", { class: "btn small", type: "button", "data-testid": "cancel-reservation", text: "Cancel", onclick: () => onCancel(r) }) : "");
  const rows = (list || []).map((r) => el("tr", { "data-reservation": String(r.id), "data-status": r.status },
    el("td", { class: "mono", text: String(r.id) }), el("td", { class: "strong", text: r.vehicle || "—" }),
    el("td", {}, el("span", { class: `pill rs-${r.status}`, text: RS_LABEL[r.status] || r.status })),
    el("td", { text: r.answer || "—" }), el("td", { class: "mono", text: time(r.created) }), el("td", { class: "mono", text: time(r.sent) }),
    el("td", { class: "mono", text: time(r.expires) }), el("td", { class: "muted small", text: r.detail || "" }), el("td", {}, cancel(r))));
  return el("section", { class: "card", "data-testid": "reservations" }, el("h2", { text: `Reservations (${rows.length})` }),
    rows.length ? el("div", { class: "table-wrap" }, el("table", { class: "table", "data-testid": "reservation-table" },
      el("thead", {}, el("tr", {}, ...["Id", "Vehicle", "State", "Station said", "Made", "Sent", "Expires", "Why", ""].map((t) => el("th", { text: t })))),
      el("tbody", {}, ...rows))) : el("p", { class: "muted", "data-testid": "no-reservations", text: "No reservations today." }));
}

// A dispatcher's form: reserve a pack here for one of the fleet's vehicles (POST .../reservations).
function reserveForm(vehicles, onReserve) {
  const pick = el("select", { "data-testid": "reserve-vehicle", "aria-label": "Vehicle" },
    ...vehicles.map((id) => el("option", { value: id, text: id })));
  const minutes = el("input", { type: "number", min: "1", max: "240", value: "30", "data-testid": "reserve-minutes", "aria-label": "Minutes" });
  return el("section", { class: "card", "data-testid": "reserve-form" }, el("h2", { text: "Reserve a pack" }),
    el("div", { class: "row" }, pick, minutes, el("span", { class: "muted small", text: "minutes" }),
      el("button", { class: "btn primary", type: "button", "data-testid": "reserve", text: "Reserve",
        onclick: () => onReserve(pick.value, Number(minutes.value)) })),
    el("p", { class: "muted small", "data-testid": "reservation-result", role: "status", text: "" }));
}

// What the station last said about itself: its firmware update's status, why it last booted,
// and a clock the CSMS found off (its timestamps are then not trusted).
function stationOps(s) {
  const bits = [s.firmware_status ? `firmware update: ${s.firmware_status}` : null, s.boot_reason ? `last boot: ${s.boot_reason}` : null,
    typeof s.clock_skew_s === "number" && Math.abs(s.clock_skew_s) > 1 ? `clock ${s.clock_skew_s > 0 ? "+" : ""}${s.clock_skew_s.toFixed(0)} s off` : null].filter(Boolean);
  return el("span", { class: "muted small", "data-testid": "station-ops", text: bits.join(" · ") });
}

export class StationsPage {
  constructor(root, { fleet = null, role = () => "", routes = new Set() } = {}) { Object.assign(this, { root, fleet, role, routes }); }

  canBook() { return ["owner", "dispatcher"].includes(this.role()) && this.routes.has("/api/stations/{station}/reservations"); }

  // Make or cancel a reservation, then show the station again with the answer.
  async book(id, method, path, body) {
    let said;
    try {
      const r = await api(`/stations/${encodeURIComponent(id)}/reservations${path}`, {
        method, headers: { "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
      said = `reservation ${r.id}: ${r.status}`;
    } catch (e) { said = e.message; }
    await this.station(id);
    const out = this.root.querySelector("[data-testid=reservation-result]");
    if (out) out.textContent = said;
  }

  async list() {
    this.root.dataset.loaded = "";
    const stations = await api("/stations");
    const card = (s) => el("a", { class: "card st-card", href: `#/stations/${encodeURIComponent(s.id)}`, "data-station": s.id },
      el("div", { class: "st-card-head" }, el("strong", { text: s.name }), el("span", { class: `pill ${s.online ? "st-ready" : "st-offline"}`, text: s.online ? "online" : "offline" })),
      el("div", { class: "muted small", text: `${s.id} · ${s.model || s.layout} · ${s.slots} slots` }),
      el("dl", { class: "summary st-facts" },
        ...[["Ready packs", String(s.ready)], ["Charging", String(s.charging)], ["Queue", String(s.queue)], ["Swaps today", String(s.swaps_today)]]
          .map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v })))));
    this.root.replaceChildren(el("div", { class: "page-head" }, el("h1", { text: "Swap stations" }), el("span", { class: "muted", text: `${stations.length} stations · OCPP 2.1` })),
      stations.length ? el("div", { class: "st-grid", "data-testid": "station-list" }, ...stations.map(card))
        : el("div", { class: "card", "data-testid": "no-stations" }, el("h2", { text: "No stations yet" }), el("p", { class: "muted", text: "Register one with anycar swap register; it shows here once it boots." })));
    this.root.dataset.loaded = "list";
  }

  async station(id) {
    this.root.dataset.loaded = "";
    let s;
    try { s = await api(`/stations/${encodeURIComponent(id)}`); } catch (e) {
      this.root.replaceChildren(el("p", { class: "error", "data-testid": "station-error", text: e.message }));
      this.root.dataset.loaded = "station";
      return;
    }
    const share = s.grid_limit_kw ? Math.min(100, (100 * (s.grid_draw_kw_estimate || 0)) / s.grid_limit_kw) : 0;
    const swaps = s.swaps.map((w) => el("tr", { "data-swap": String(w.id) },
      el("td", { class: "mono", text: time(w.requested) }), el("td", { class: "strong", text: w.vehicle || "—" }),
      el("td", {}, el("span", { class: `pill sw-${w.state}`, text: w.state })),
      el("td", {}, w.pack_old ? el("a", { class: "mono", href: `#/packs/${encodeURIComponent(w.pack_old)}`, text: `${w.pack_old} (${soc(w.soc_old)})` }) : "—"),
      el("td", {}, w.pack_new ? el("a", { class: "mono", href: `#/packs/${encodeURIComponent(w.pack_new)}`, text: `${w.pack_new} (${soc(w.soc_new)})` }) : "—"),
      el("td", { class: "num", text: w.energy_kwh === null ? "—" : `${w.energy_kwh.toFixed(2)} kWh` }),
      el("td", { class: "num", text: w.amount === null ? "—" : `${w.amount.toFixed(2)} ${w.currency || ""}` }),
      el("td", { class: "num", text: w.duration_s === null ? "—" : `${w.duration_s.toFixed(1)} s` })));
    const fact = (k, v, test) => el("div", { "data-testid": test }, el("dt", { text: k }), el("dd", { text: v }));
    this.root.replaceChildren(
      el("div", { class: "page-head" }, el("a", { class: "back", href: "#/stations", text: "← Stations" }), el("h1", { text: s.name }),
        el("span", { class: `pill ${s.online ? "st-ready" : "st-offline"}`, text: s.online ? "online" : "offline" }), el("span", { class: "muted", text: `${s.id} · ${s.vendor || ""} ${s.model || ""} · firmware ${s.firmware || "—"} · last seen ${time(s.last_seen)}` }),
        stationOps(s)),
      el("div", { class: "st-top" },
        el("section", { class: "card" }, el("dl", { class: "summary st-facts", "data-testid": "station-facts" },
          fact("Ready packs", String(s.ready), "fact-ready"), fact("Charging", String(s.charging), "fact-charging"), fact("Queue", String(s.queue), "fact-queue"),
          fact("Swaps today", String(s.swaps_today), "fact-swaps"))),
        el("section", { class: "card st-grid-power", "data-testid": "grid-power" }, el("div", { class: "muted small", text: "Grid power" }),
          el("div", { class: "lg-kpi-v", text: `${(s.grid_draw_kw_estimate ?? 0).toFixed(1)} / ${s.grid_limit_kw.toFixed(1)} kW` }),
          el("div", { class: "gauge big" }, el("i", { style: `width: ${share}%` })),
          el("div", { class: "muted small", text: `estimate: ${s.charging} packs charging on ${s.chargers ?? "?"} chargers of ${s.charger_kw ?? "?"} kW, capped at the grid limit (the CSMS meters SoC, not power)` }))),
      el("section", { class: "card" }, el("h2", { text: `Slots (${s.slot_list.length})` }), el("div", { class: "slots", "data-testid": "slots" }, ...s.slot_list.map(slotCard))),
      el("section", { class: "card" }, el("h2", { text: "Swaps today" }),
        s.swaps.length ? el("div", { class: "table-wrap" }, el("table", { class: "table", "data-testid": "swaps" },
          el("thead", {}, el("tr", {}, ...["Requested", "Vehicle", "State", "Pack in (SoC)", "Pack out (SoC)", "Energy", "Billed", "Took"].map((t, i) => el("th", { class: i > 4 ? "num" : "", text: t })))),
          el("tbody", {}, ...swaps))) : el("p", { class: "muted", "data-testid": "no-swaps", text: "No swaps today." })),
      reservationsCard(s.reservation_list, this.canBook() ? (r) => this.book(id, "DELETE", `/${r.id}`) : null));
    if (this.canBook() && this.fleet) {
      const ids = [...this.fleet.vehicles.keys()].sort();
      this.root.append(reserveForm(ids, (vehicle, minutes) => this.book(id, "POST", "", { vehicle, minutes })));
    }
    this.root.dataset.loaded = "station";
  }

  async passport(serial) {
    this.root.dataset.loaded = "";
    let p;
    try { p = await api(`/packs/${encodeURIComponent(serial)}`); } catch (e) {
      this.root.replaceChildren(el("p", { class: "error", "data-testid": "passport-error", text: e.message }));
      this.root.dataset.loaded = "passport";
      return;
    }
    const where = p.station ? `in ${p.station}, slot ${p.evse}` : p.vehicle ? `in ${p.vehicle}` : p.state;
    const fact = (k, v) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }));
    const steps = p.history.map((h) => el("li", { class: `pp-step ev-${h.event}` },
      el("span", { class: "pp-time mono", text: when(h.ts) }),
      el("div", {}, el("strong", { text: EVENTS[h.event] || h.event }),
        el("div", { class: "small muted", text: [h.station ? `station ${h.station}${h.evse_id ? ` slot ${h.evse_id}` : ""}` : null, h.vehicle ? `${h.event === "into_slot" ? "from" : "vehicle"} ${h.vehicle}` : null,
          typeof h.soc === "number" ? `SoC ${h.soc.toFixed(0)} %` : null, typeof h.soh === "number" ? `SoH ${h.soh.toFixed(0)} %` : null, h.swap_id ? `swap ${h.swap_id}` : null, h.detail || null].filter(Boolean).join(" · ") }))));
    this.root.replaceChildren(
      el("div", { class: "page-head" }, el("a", { class: "back", href: "#/stations", text: "← Stations" }), el("h1", { text: `Battery passport · ${p.serial}` }), el("span", { class: `pill st-${p.state}`, text: p.state })),
      el("div", { class: "st-top" },
        el("section", { class: "card" }, el("dl", { class: "summary", "data-testid": "passport-facts" },
          fact("Chemistry", p.chemistry), fact("Capacity", `${p.capacity_kwh} kWh`), fact("State of health", `${p.soh.toFixed(1)} %`), fact("State of charge", soc(p.soc)),
          fact("Cycles (equivalent full)", p.cycles.toFixed(2)), fact("Where now", where), fact("Stations seen", String(p.stations_seen)), fact("Vehicles seen", String(p.vehicles_seen)))),
        el("section", { class: "card" }, el("div", { class: "muted small", text: "State of health" }), el("div", { class: "lg-kpi-v", text: `${p.soh.toFixed(0)} %` }),
          el("div", { class: "gauge big soh" }, el("i", { style: `width: ${Math.max(0, Math.min(100, p.soh))}%` })), el("div", { class: "muted small", text: "a pack under the policy's 70 % SoH is retired from service" }))),
      el("section", { class: "card" }, el("h2", { text: `History (${p.history.length} events)` }), el("ol", { class: "pp-history", "data-testid": "passport-history" }, ...steps)));
    this.root.dataset.loaded = "passport";
  }
}
