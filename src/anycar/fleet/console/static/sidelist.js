// The map's side panel: the filtered vehicles, moving ones first; at most LIMIT rows are in the
// DOM (refine the filters for the rest), redrawn at most every REDRAW_MS.
import { el } from "./dom.js";
import { iconUrl } from "./icons.js";
import { ago } from "./fleet.js";
import { perf } from "./perf.js";

const LIMIT = 100;
const REDRAW_MS = 2000;
const ORDER = { moving: 0, idle: 1, offline: 2, revoked: 3 };

export function sortVehicles(fleet, list) {
  const now = Date.now() / 1000;
  const rank = new Map(list.map((v) => [v, ORDER[fleet.stateOf(v, now)]]));
  return list.sort((a, b) => rank.get(a) - rank.get(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export class SideList {
  constructor(container, fleet, filters, onPick) {
    Object.assign(this, { container, fleet, filters, onPick });
    this.last = 0;
    this.timer = null;
  }

  request() {
    if (this.timer) return;
    const wait = Math.max(0, REDRAW_MS - (performance.now() - this.last));
    this.timer = setTimeout(() => { this.timer = null; perf.time("sidelist", () => this.render()); }, wait);
  }

  render() {
    this.last = performance.now();
    const types = this.fleet.config.vehicles.types;
    const all = sortVehicles(this.fleet, [...this.fleet.vehicles.values()].filter((v) => this.filters.matches(v)));
    const rows = all.slice(0, LIMIT).map((v) => {
      const state = this.fleet.stateOf(v);
      const speed = v.position && typeof v.position.speed === "number" ? `${Math.round(v.position.speed)} km/h` : "";
      return el("li", { class: `veh ${state}${v.id === this.selected ? " selected" : ""}`, "data-vehicle": v.id, onclick: () => this.onPick(v.id) },
        el("img", { src: iconUrl(types[v.type].icon, state), alt: "", width: "26", height: "26" }),
        el("div", { class: "veh-main" },
          el("div", { class: "veh-name", text: v.id }),
          el("div", { class: "veh-sub", text: `${v.brand} · ${types[v.type].label}` })),
        el("div", { class: "veh-side" },
          el("span", { class: `state-tag ${state}`, text: state }),
          el("span", { class: "veh-meta", text: [typeof v.soc === "number" ? `${Math.round(v.soc)} %` : "", speed || ago(v.last_seen)].filter(Boolean).join(" · ") })));
    });
    if (!rows.length) rows.push(el("li", { class: "empty", text: this.fleet.vehicles.size ? "No vehicle matches the filters." : "No vehicles registered yet (anycar fleet vehicle add)." }));
    if (all.length > LIMIT) rows.push(el("li", { class: "more", text: `and ${all.length - LIMIT} more — refine the filters` }));
    this.container.replaceChildren(...rows);
    this.container.dataset.count = String(all.length);
  }
}
