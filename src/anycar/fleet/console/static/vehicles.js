// The vehicles page: a table of the filtered fleet with state, battery, speed and last contact.
import { el } from "./dom.js";
import { iconUrl } from "./icons.js";
import { ago } from "./fleet.js";
import { sortVehicles } from "./sidelist.js";

const LIMIT = 500;

export function renderTable(tbody, fleet, filters) {
  const types = fleet.config.vehicles.types;
  const all = sortVehicles(fleet, [...fleet.vehicles.values()].filter((v) => filters.matches(v)));
  const rows = all.slice(0, LIMIT).map((v) => {
    const state = fleet.stateOf(v);
    return el("tr", { "data-vehicle": v.id, onclick: () => { location.hash = `#/vehicles/${encodeURIComponent(v.id)}`; } },
      el("td", {}, el("img", { src: iconUrl(types[v.type].icon, state), alt: "", width: "22", height: "22" })),
      el("td", { class: "strong" }, el("a", { href: `#/vehicles/${encodeURIComponent(v.id)}`, text: v.id })),
      el("td", { class: "mono", text: v.vin }),
      el("td", { text: v.brand }),
      el("td", { text: types[v.type].label }),
      el("td", {}, el("span", { class: `state-tag ${state}`, text: state })),
      el("td", { class: "num", text: typeof v.soc === "number" ? `${v.soc.toFixed(0)} %` : "—" }),
      el("td", { class: "num", text: v.position && typeof v.position.speed === "number" ? `${v.position.speed.toFixed(0)} km/h` : "—" }),
      el("td", { text: ago(v.last_seen) }));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "9", class: "empty", text: "No vehicle matches the filters." })));
  if (all.length > LIMIT) rows.push(el("tr", {}, el("td", { colspan: "9", class: "more", text: `and ${all.length - LIMIT} more — refine the filters` })));
  tbody.replaceChildren(...rows);
  tbody.dataset.count = String(all.length);
}
