// The live map: the base map from the shipped OpenStreetMap GeoJSON (no tiles, no internet),
// drawn by MapLibre GL JS, and the vehicle overlay on top (type glyph, state colour, heading
// pointer, battery gauge, short live trails, the selected vehicle's track of today). Positions
// are batched: the overlay is redrawn at most every FLUSH_MS, so 1,000 vehicles at 1 Hz cost a
// few small tasks a second; each flush records when its positions were committed and when the
// frame that shows them was drawn.
import { VehicleOverlay } from "./overlay.js";
import { perf } from "./perf.js";

const FLUSH_MS = 200;
const maplibregl = window.maplibregl;

const PALETTES = {
  dark: { bg: "#0e1420", water: "#17324d", park: "#15291f", building: "#1c2433", buildingLine: "#263247",
    rail: "#3a4458", path: "#2a3344", street: "#3a4558", secondary: "#566178", primary: "#8a7346", casing: "#0a0f18",
    track: "#38bdf8", trail: "#7dd3fc" },
  light: { bg: "#f4f1ea", water: "#a9d3f0", park: "#cfe8c6", building: "#e2ddd3", buildingLine: "#cfc8bb",
    rail: "#b7b2a8", path: "#ffffff", street: "#ffffff", secondary: "#fde7a6", primary: "#f7c873", casing: "#cbc4b6",
    track: "#0284c7", trail: "#0369a1" },
};

const widths = (a, b) => ["interpolate", ["exponential", 1.6], ["zoom"], 13, a, 18, b];

function style(p) {
  return {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": p.bg } }],
  };
}

function basemapLayers(p) {
  const road = (cls) => ["all", ["==", ["get", "layer"], "road"], ["==", ["get", "class"], cls]];
  return [
    { id: "water", type: "fill", source: "basemap", filter: ["==", ["get", "layer"], "water"], paint: { "fill-color": p.water } },
    { id: "park", type: "fill", source: "basemap", filter: ["==", ["get", "layer"], "park"], paint: { "fill-color": p.park } },
    { id: "building", type: "fill", source: "basemap", filter: ["==", ["get", "layer"], "building"],
      paint: { "fill-color": p.building, "fill-outline-color": p.buildingLine } },
    { id: "rail", type: "line", source: "basemap", filter: ["==", ["get", "layer"], "rail"],
      paint: { "line-color": p.rail, "line-width": widths(0.6, 2), "line-dasharray": [3, 2] } },
    { id: "road-path", type: "line", source: "basemap", filter: road("path"),
      paint: { "line-color": p.path, "line-width": widths(0.4, 2), "line-opacity": 0.7 } },
    { id: "road-casing", type: "line", source: "basemap", filter: ["all", ["==", ["get", "layer"], "road"], ["!=", ["get", "class"], "path"]],
      layout: { "line-join": "round", "line-cap": "round" }, paint: { "line-color": p.casing, "line-width": widths(2, 16) } },
    { id: "road-street", type: "line", source: "basemap", filter: road("street"),
      layout: { "line-join": "round", "line-cap": "round" }, paint: { "line-color": p.street, "line-width": widths(1, 10) } },
    { id: "road-secondary", type: "line", source: "basemap", filter: road("secondary"),
      layout: { "line-join": "round", "line-cap": "round" }, paint: { "line-color": p.secondary, "line-width": widths(1.4, 13) } },
    { id: "road-primary", type: "line", source: "basemap", filter: ["any", road("primary"), road("motorway")],
      layout: { "line-join": "round", "line-cap": "round" }, paint: { "line-color": p.primary, "line-width": widths(1.8, 15) } },
  ];
}

export class LiveMap {
  constructor(container, { fleet, basemap, theme, onSelect, interactive = true, showAll = true }) {
    this.fleet = fleet;
    this.onSelect = onSelect;
    this.showAll = showAll;
    this.selected = null;
    this.dirty = false;
    this.pending = null; // {oldest, newest, n} of positions applied since the last flush
    this.theme = theme;
    const [w, s, e, n] = basemap.bbox;
    this.map = new maplibregl.Map({
      container, style: style(PALETTES[theme]), bounds: [[w, s], [e, n]], fitBoundsOptions: { padding: 20 },
      attributionControl: false, interactive, maxZoom: 19, minZoom: 11, renderWorldCopies: false, fadeDuration: 0,
    });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: true }), "top-right");
    this.map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
    this.ready = new Promise((resolve) => this.map.on("load", () => { this.build(basemap); resolve(); }));
  }

  build(basemap) {
    const m = this.map;
    // Tiles made up to zoom 15 and over-zoomed beyond: fewer tiles to cut and upload while zooming.
    m.addSource("basemap", { type: "geojson", data: basemap, tolerance: 0.2, maxzoom: 15, buffer: 32 });
    for (const layer of basemapLayers(PALETTES[this.theme])) m.addLayer(layer);
    this.overlay = new VehicleOverlay(m, this.fleet, { showAll: this.showAll });
    this.overlay.selected = this.selected;
    this.overlay.setColours(PALETTES[this.theme]);
    if (this.onSelect) {
      m.on("click", (e) => { const id = this.overlay.vehicleAt(e.point.x, e.point.y); if (id) this.onSelect(id); });
      m.on("mousemove", (e) => { m.getCanvas().style.cursor = this.overlay.vehicleAt(e.point.x, e.point.y) ? "pointer" : ""; });
    }
    this.flush();
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
  }

  // Called for every live position (after fleet.apply).
  moved(msg) {
    this.dirty = true;
    const p = this.pending || (this.pending = { oldest: Infinity, newest: 0, n: 0 });
    p.oldest = Math.min(p.oldest, msg.ts); p.newest = Math.max(p.newest, msg.ts); p.n += 1;
  }

  changed() { this.dirty = true; }

  flush() {
    if (!this.dirty || !this.overlay) return;
    this.dirty = false;
    const t0 = performance.now();
    perf.time("draw", () => this.overlay.draw());
    if (this.pending) {
      perf.flushed(this.pending, t0);
      this.pending = null;
      // The second animation frame after the draw starts once the frame with it was produced.
      requestAnimationFrame(() => requestAnimationFrame(() => perf.drawn()));
    }
  }

  select(id) {
    this.selected = id;
    if (this.overlay) this.overlay.selected = id;
    this.dirty = true;
  }

  showTrack(points) {
    if (!this.overlay) return;
    this.trackLength = points.length;
    this.overlay.track = points;
    this.dirty = true;
  }

  fitTo(points) {
    if (!points.length) return;
    const b = new maplibregl.LngLatBounds();
    for (const p of points) b.extend([p.lon, p.lat]);
    this.map.fitBounds(b, { padding: 60, maxZoom: 16, duration: 0 });
  }

  flyTo(v) { if (v && v.position) this.map.easeTo({ center: [v.position.lon, v.position.lat], zoom: Math.max(this.map.getZoom(), 15.5) }); }

  setTheme(theme) {
    this.theme = theme;
    const p = PALETTES[theme];
    const m = this.map;
    m.setPaintProperty("background", "background-color", p.bg);
    for (const layer of basemapLayers(p)) for (const [k, v] of Object.entries(layer.paint)) m.setPaintProperty(layer.id, k, v);
    this.overlay.setColours(p);
  }

  destroy() { clearInterval(this.timer); this.map.remove(); }
}

export function setup(workerUrl) { maplibregl.setWorkerUrl(workerUrl); }
