// The vehicle filters (state, brand, type, SoC below, name/VIN search), shared by the map's side
// panel and the vehicles page; the filter state lives in the URL hash's query, so it survives
// a reload and can be sent as a link.
import { el } from "./dom.js";

export const STATES = ["moving", "idle", "offline", "revoked"];

export class Filters {
  constructor(fleet, onChange) {
    this.fleet = fleet;
    this.onChange = onChange;
    this.value = { q: "", state: "", brand: "", type: "", soc: "" };
  }

  matches(v) {
    const f = this.value;
    if (f.state && this.fleet.stateOf(v) !== f.state) return false;
    if (f.brand && v.brand !== f.brand) return false;
    if (f.type && v.type !== f.type) return false;
    if (f.soc !== "" && !(v.soc !== null && v.soc !== undefined && v.soc < Number(f.soc))) return false;
    if (f.q) {
      const q = f.q.toLowerCase();
      if (!v.id.toLowerCase().includes(q) && !v.vin.toLowerCase().includes(q)) return false;
    }
    return true;
  }

  render(container) {
    const types = this.fleet.config.vehicles.types;
    const set = (k) => (e) => { this.value[k] = e.target.value.trim(); this.onChange(); };
    const select = (k, label, options) => el("select", { "data-filter": k, "aria-label": label, onchange: set(k) },
      el("option", { value: "", text: label }), ...options.map(([v, t]) => el("option", { value: v, text: t })));
    this.brandSelect = select("brand", "all brands", []);
    container.replaceChildren(
      el("input", { type: "search", placeholder: "Search name or VIN", "data-filter": "q", "aria-label": "search", maxlength: "64", oninput: set("q") }),
      el("div", { class: "filter-row" },
        select("state", "any state", STATES.map((s) => [s, s])),
        this.brandSelect,
        select("type", "any type", Object.entries(types).map(([k, t]) => [k, t.label])),
        el("label", { class: "soc-filter" }, "SoC <",
          el("input", { type: "number", min: "0", max: "100", step: "5", placeholder: "%", "data-filter": "soc", "aria-label": "SoC below", oninput: set("soc") }))),
    );
  }

  updateBrands() {
    if (!this.brandSelect) return;
    const have = new Set([...this.brandSelect.options].map((o) => o.value));
    for (const b of this.fleet.brands()) if (!have.has(b)) this.brandSelect.append(el("option", { value: b, text: b }));
  }
}
