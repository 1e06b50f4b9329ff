// Geofences (shown when the server has /api/geofences): drawn on every map as a fill and an
// outline; on the geofences page they are listed, drawn (a polygon by clicks, finished with
// "Save"; a circle by its centre and a point on its edge) and deleted.
import { api } from "./api.js";
import { el } from "./dom.js";
import { LiveMap } from "./map.js";

export const ROUTES = ["/api/geofences", "/api/geofences/{geofence}"];
const EMPTY = { type: "FeatureCollection", features: [] };

function circle([lon, lat], radius, steps = 64) {
  const ring = [];
  const dLat = radius / 110574, dLon = radius / (111320 * Math.cos((lat * Math.PI) / 180));
  for (let i = 0; i <= steps; i += 1) {
    const a = (i / steps) * 2 * Math.PI;
    ring.push([lon + dLon * Math.cos(a), lat + dLat * Math.sin(a)]);
  }
  return ring;
}

function metres(a, b) {
  const k = Math.cos((((a[1] + b[1]) / 2) * Math.PI) / 180);
  return Math.hypot((b[0] - a[0]) * 111320 * k, (b[1] - a[1]) * 110574);
}

// Circles (a Point with radius_m) as polygons, for drawing.
export function drawable(fc) {
  return { type: "FeatureCollection", features: (fc.features || []).map((f) => (f.geometry.type === "Point"
    ? { ...f, geometry: { type: "Polygon", coordinates: [circle(f.geometry.coordinates, f.properties.radius_m || 50)] } } : f)) };
}

export function showGeofences(map, fc, colour = "#a78bfa") {
  const data = drawable(fc);
  if (map.getSource("geofences")) { map.getSource("geofences").setData(data); return; }
  map.addSource("geofences", { type: "geojson", data });
  map.addLayer({ id: "geofence-fill", type: "fill", source: "geofences", paint: { "fill-color": colour, "fill-opacity": 0.12 } });
  map.addLayer({ id: "geofence-line", type: "line", source: "geofences", paint: { "line-color": colour, "line-width": 2, "line-dasharray": [2, 1] } });
}

export class GeofencesPage {
  constructor(root, { fleet, basemap, theme, onChange }) {
    Object.assign(this, { root, fleet, basemap, theme, onChange });
    this.mode = null;
    this.points = [];
  }

  async open() {
    if (this.map) { await this.load(); return; }
    const root = this.root;
    this.list = el("ul", { class: "fence-list", "data-testid": "geofence-list" });
    this.name = el("input", { type: "text", placeholder: "Name (e.g. Depot)", maxlength: "120", "data-testid": "geofence-name" });
    this.limit = el("input", { type: "number", min: "1", max: "200", placeholder: "km/h", "data-testid": "geofence-limit" });
    this.hint = el("p", { class: "muted small", "data-testid": "draw-hint", text: "Choose a shape, then click on the map." });
    this.error = el("p", { class: "error", "data-testid": "geofence-error" });
    const button = (text, testid, onclick, cls = "") => el("button", { type: "button", class: cls, "data-testid": testid, text, onclick });
    const mapBox = el("div", { class: "map", "data-testid": "geofence-map" });
    root.replaceChildren(
      el("aside", { class: "side" }, el("div", { class: "side-head" }, el("h2", { text: "Geofences" }),
        el("div", { class: "filters" }, this.name,
          el("label", { class: "soc-filter" }, "Speed limit", this.limit),
          el("div", { class: "filter-row" }, button("Draw polygon", "draw-polygon", () => this.start("polygon")), button("Draw circle", "draw-circle", () => this.start("circle"))),
          el("div", { class: "filter-row" }, button("Save", "save-geofence", () => this.save(), "primary"), button("Cancel", "cancel-geofence", () => this.start(null))),
          this.hint, this.error)),
      this.list),
      el("div", { class: "map-wrap" }, mapBox, el("div", { class: "attribution", text: "© OpenStreetMap contributors, ODbL · MapLibre" })));
    this.map = new LiveMap(mapBox, { fleet: this.fleet, basemap: this.basemap, theme: this.theme });
    await this.map.ready;
    const m = this.map.map;
    m.doubleClickZoom.disable();
    m.addSource("draft", { type: "geojson", data: EMPTY });
    m.addLayer({ id: "draft-fill", type: "fill", source: "draft", paint: { "fill-color": "#38bdf8", "fill-opacity": 0.2 } });
    m.addLayer({ id: "draft-line", type: "line", source: "draft", paint: { "line-color": "#38bdf8", "line-width": 2 } });
    m.addLayer({ id: "draft-points", type: "circle", source: "draft", filter: ["==", ["geometry-type"], "Point"], paint: { "circle-radius": 4, "circle-color": "#38bdf8" } });
    m.on("click", (e) => this.click([e.lngLat.lng, e.lngLat.lat]));
    this.map.changed();
    await this.load();
    root.dataset.loaded = "true";
  }

  start(mode) {
    this.mode = mode;
    this.points = [];
    this.error.textContent = "";
    this.hint.textContent = mode === "polygon" ? "Click the corners on the map, then Save."
      : mode === "circle" ? "Click the centre, then a point on the edge." : "Choose a shape, then click on the map.";
    this.drawDraft();
  }

  click(lngLat) {
    if (!this.mode) return;
    if (this.mode === "circle" && this.points.length >= 2) this.points = [];
    this.points.push(lngLat);
    this.drawDraft();
  }

  feature() {
    const props = { name: this.name.value.trim() };
    if (this.limit.value) props.speed_limit_kmh = Number(this.limit.value);
    if (this.mode === "circle" && this.points.length === 2) {
      return { type: "Feature", geometry: { type: "Point", coordinates: this.points[0] }, properties: { ...props, radius_m: Math.round(metres(this.points[0], this.points[1])) } };
    }
    if (this.mode === "polygon" && this.points.length >= 3) {
      return { type: "Feature", geometry: { type: "Polygon", coordinates: [[...this.points, this.points[0]]] }, properties: props };
    }
    return null;
  }

  drawDraft() {
    const src = this.map && this.map.map.getSource("draft");
    if (!src) return;
    const f = this.feature();
    const points = this.points.map((c) => ({ type: "Feature", geometry: { type: "Point", coordinates: c }, properties: {} }));
    const shapes = f ? drawable({ features: [f] }).features : this.points.length > 1
      ? [{ type: "Feature", geometry: { type: "LineString", coordinates: this.points }, properties: {} }] : [];
    src.setData({ type: "FeatureCollection", features: [...shapes, ...points] });
  }

  async save() {
    const f = this.feature();
    if (!f) { this.error.textContent = this.mode === "circle" ? "A circle needs its centre and a point on its edge." : "A polygon needs at least three corners."; return; }
    if (!f.properties.name) { this.error.textContent = "Give the geofence a name."; return; }
    try {
      await api("/geofences", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(f) });
    } catch (e) { this.error.textContent = e.message; return; }
    this.name.value = ""; this.limit.value = "";
    this.start(null);
    await this.load();
  }

  async remove(id) {
    try { await api(`/geofences/${id}`, { method: "DELETE" }); } catch (e) { this.error.textContent = e.message; }
    await this.load();
  }

  async load() {
    const fc = await api("/geofences");
    showGeofences(this.map.map, fc);
    this.list.replaceChildren(...(fc.features.length ? fc.features.map((f) => el("li", { class: "veh", "data-geofence": String(f.id) },
      el("div", { class: "veh-main" }, el("div", { class: "veh-name", text: f.properties.name }),
        el("div", { class: "veh-sub", text: [f.geometry.type === "Point" ? `circle, ${f.properties.radius_m} m` : "polygon", f.properties.speed_limit_kmh ? `limit ${f.properties.speed_limit_kmh} km/h` : null].filter(Boolean).join(" · ") })),
      el("button", { type: "button", class: "ghost small-button", "data-delete": String(f.id), text: "Delete", onclick: () => this.remove(f.id) })))
      : [el("li", { class: "empty", text: "No geofences yet: draw one on the map." })]));
    this.list.dataset.count = String(fc.features.length);
    if (this.onChange) this.onChange(fc);
  }
}
