// The vehicles, their short trails and the selected vehicle's track, drawn on a 2D canvas laid
// over the map. MapLibre keeps the base map (drawn again only when the view moves); a position
// update redraws this canvas only, which costs a few milliseconds for 1,000 vehicles, where
// rewriting a GeoJSON source would make MapLibre draw the whole map again (hundreds of
// milliseconds per frame with a software GL on a busy machine).
import { pointerIndex, sprites } from "./icons.js";

const HIT_PX = 15;
const MOVE_MS = 120;

export class VehicleOverlay {
  constructor(map, fleet, { showAll = true } = {}) {
    this.map = map;
    this.fleet = fleet;
    this.showAll = showAll;
    this.selected = null;
    this.track = [];
    this.colours = { track: "#38bdf8", trail: "#7dd3fc" };
    this.sprites = sprites(fleet.config.vehicles.types);
    this.canvas = document.createElement("canvas");
    this.canvas.className = "vehicle-overlay";
    this.canvas.dataset.testid = "vehicle-overlay";
    map.getCanvasContainer().after(this.canvas);
    this.drawnAt = 0;
    this.placed = []; // [x, y, id] of what the last draw put on the canvas, for hit tests
    this.resize();
    map.on("resize", () => { this.resize(); this.draw(); });
    // While the view moves, redraw at most every MOVE_MS (each frame of a zoom is a base map
    // frame already); once it stops, at once.
    map.on("move", () => { if (performance.now() - this.drawnAt >= MOVE_MS) this.draw(); });
    map.on("moveend", () => this.draw());
  }

  resize() {
    const c = this.map.getCanvas();
    const ratio = window.devicePixelRatio || 1;
    this.width = c.clientWidth; this.height = c.clientHeight;
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.canvas.style.width = `${this.width}px`;
    this.canvas.style.height = `${this.height}px`;
    this.ratio = ratio;
  }

  setColours(colours) { this.colours = colours; this.draw(); }

  draw() {
    this.drawnAt = performance.now();
    const ctx = this.canvas.getContext("2d");
    const { map, fleet } = this;
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    const zoom = map.getZoom();
    const bearing = map.getBearing();
    const now = Date.now() / 1000;
    const pad = 30;
    const placed = [];
    const drawn = [];
    for (const v of fleet.vehicles.values()) {
      if (!v.position || (!this.showAll && v.id !== this.selected)) continue;
      const p = map.project([v.position.lon, v.position.lat]);
      if (p.x < -pad || p.y < -pad || p.x > this.width + pad || p.y > this.height + pad) continue;
      drawn.push([v, p, fleet.stateOf(v, now)]);
    }
    if (this.track.length > 1) this.line(ctx, this.track.map((q) => [q.lon, q.lat]), this.colours.track, 4, 0.85);
    if (zoom >= 15 || drawn.length <= 300) {
      ctx.globalAlpha = 0.35; ctx.strokeStyle = this.colours.trail; ctx.lineWidth = 2; ctx.lineJoin = "round"; ctx.lineCap = "round";
      ctx.beginPath();
      for (const [v] of drawn) {
        if (v.trail.length < 2) continue;
        v.trail.forEach((c, i) => { const q = map.project(c); if (i) ctx.lineTo(q.x, q.y); else ctx.moveTo(q.x, q.y); });
      }
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    const order = { offline: 0, revoked: 0, idle: 1, moving: 2 };
    drawn.sort((a, b) => order[a[2]] - order[b[2]]);
    const s = this.sprites;
    for (const [v, p, state] of drawn) {
      const x = Math.round(p.x), y = Math.round(p.y);
      if (v.id === this.selected) {
        ctx.beginPath(); ctx.arc(p.x, p.y, 21, 0, 7);
        ctx.fillStyle = "rgba(56,189,248,.25)"; ctx.fill(); ctx.lineWidth = 2; ctx.strokeStyle = this.colours.track; ctx.stroke();
      }
      if (typeof v.position.heading === "number") ctx.drawImage(s.pointer[state][pointerIndex(v.position.heading - bearing)], x - 22, y - 22, 44, 44);
      ctx.drawImage(s.vehicle[`${v.type}-${state}`], x - 15, y - 15, 30, 30);
      if ((zoom >= 16 || (zoom >= 14 && drawn.length <= 300)) && typeof v.soc === "number") {
        ctx.drawImage(s.battery[Math.max(0, Math.min(10, Math.round(v.soc / 10)))], x - 13, y + 15, 26, 10);
      }
      placed.push([p.x, p.y, v.id]);
    }
    this.placed = placed;
    this.canvas.dataset.count = String(placed.length);
  }

  line(ctx, coords, colour, width, alpha) {
    ctx.globalAlpha = alpha; ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.lineJoin = "round"; ctx.lineCap = "round";
    ctx.beginPath();
    coords.forEach((c, i) => { const q = this.map.project(c); if (i) ctx.lineTo(q.x, q.y); else ctx.moveTo(q.x, q.y); });
    ctx.stroke(); ctx.globalAlpha = 1;
  }

  // The vehicle drawn nearest to a point of the map (within HIT_PX), the topmost first.
  vehicleAt(x, y) {
    let best = null, dist = HIT_PX;
    for (let i = this.placed.length - 1; i >= 0; i -= 1) {
      const [px, py, id] = this.placed[i];
      const d = Math.hypot(px - x, py - y);
      if (d < dist) { dist = d; best = id; }
    }
    return best;
  }
}
