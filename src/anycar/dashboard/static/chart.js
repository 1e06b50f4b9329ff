// A small live chart on a canvas: one lane per series over a sliding time window, each with its
// own labelled axis (unit, low and high values), so a 0.3 % battery drop reads as 0.3 %, not as a
// cliff. A series holding one value draws a flat line up to now; recent history can be loaded.

export class LiveChart {
  constructor(canvas, { windowS = 120, series = [] } = {}) {
    this.canvas = canvas;
    this.windowS = windowS;
    this.series = series.map((s) => ({ ...s, points: [] }));
    this.dirty = true;
    this.stale = false;
    this._loop = this._loop.bind(this);
    requestAnimationFrame(this._loop);
  }

  push(key, value, tMs = Date.now()) {
    const s = this.series.find((x) => x.key === key);
    if (!s || typeof value !== "number" || !Number.isFinite(value)) return;
    const last = s.points[s.points.length - 1];
    if (last && tMs < last[0]) return; // history arriving after live values: keep time order
    s.points.push([tMs, value]);
    this._trim(s, tMs);
    this.dirty = true;
  }

  /** Recent values from the hub (oldest first), put before what arrived live. */
  load(key, points) {
    const s = this.series.find((x) => x.key === key);
    if (!s) return;
    const first = s.points.length ? s.points[0][0] : Infinity;
    const older = points.filter(([t, v]) => t < first && typeof v === "number" && Number.isFinite(v));
    s.points = [...older, ...s.points];
    this._trim(s, Date.now());
    this.dirty = true;
  }

  _trim(s, nowMs) {
    const cutoff = nowMs - this.windowS * 1000;
    // keep one point before the window, so a line enters from the left edge
    while (s.points.length > 1 && s.points[1][0] < cutoff) s.points.shift();
  }

  count() {
    return this.series.reduce((n, s) => n + s.points.length, 0);
  }

  setStale(stale) {
    this.stale = stale;
    this.dirty = true;
  }

  _loop() {
    try {
      if (this.dirty || !this.stale) this.draw(); // live: the window slides even without new values
      this.dirty = false;
    } finally {
      requestAnimationFrame(this._loop); // one bad frame must not stop the chart
    }
  }

  /** The lane's value range: the data's, widened to ``minSpan`` around it (never a flat zero). */
  range(s) {
    if (!s.points.length) return null;
    let lo = Infinity;
    let hi = -Infinity;
    for (const [, v] of s.points) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (s.min !== undefined) lo = Math.min(lo, s.min);
    if (!Number.isFinite(lo)) return null;
    const span = s.minSpan ?? 1;
    if (hi - lo < span) {
      const mid = (hi + lo) / 2;
      lo = s.min !== undefined ? Math.max(s.min, mid - span / 2) : mid - span / 2;
      hi = lo + span;
    }
    return [lo, hi];
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || c.width;
    const h = c.clientHeight || c.height;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const pad = { l: 64, r: 10, t: 6, b: 20 };
    const pw = w - pad.l - pad.r;
    const lanes = this.series.length || 1;
    const gap = 8;
    const lh = (h - pad.t - pad.b - gap * (lanes - 1)) / lanes;
    const now = this.stale && this.lastDrawnAt ? this.lastDrawnAt : Date.now();
    this.lastDrawnAt = now;
    const t0 = now - this.windowS * 1000;
    const xOf = (t) => pad.l + Math.max(0, Math.min(1, (t - t0) / (this.windowS * 1000))) * pw;

    g.font = "11px system-ui, sans-serif";
    g.lineWidth = 1;
    this.series.forEach((s, i) => {
      const top = pad.t + i * (lh + gap);
      g.strokeStyle = "#1f2b3d";
      g.strokeRect(pad.l + 0.5, top + 0.5, pw - 1, lh - 1);
      g.fillStyle = s.color;
      g.textAlign = "left";
      g.fillText(`${s.name || s.key}${s.unit ? ` (${s.unit})` : ""}`, pad.l + 6, top + 13);
      const r = this.range(s);
      g.fillStyle = "#6b7c93";
      if (!r) {
        g.fillText("no value yet", pad.l + 8, top + lh / 2 + 4);
        return;
      }
      const [lo, hi] = r;
      const digits = s.axisDigits ?? s.digits ?? 1;
      g.textAlign = "right";
      g.fillText(`${hi.toFixed(digits)} ${s.unit || ""}`.trim(), pad.l - 6, top + 11);
      g.fillText(`${lo.toFixed(digits)} ${s.unit || ""}`.trim(), pad.l - 6, top + lh - 3);
      const yOf = (v) => top + lh - 2 - ((v - lo) / (hi - lo)) * (lh - 4);
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.lineJoin = "round";
      g.beginPath();
      let started = false;
      for (const [t, v] of s.points) {
        const x = xOf(t);
        const y = yOf(v);
        if (!started) { g.moveTo(x, y); started = true; } else g.lineTo(x, y);
      }
      const last = s.points[s.points.length - 1];
      g.lineTo(xOf(now), yOf(last[1])); // the value holds until it changes: draw it up to now
      g.stroke();
      g.lineWidth = 1;
      if (s.label) s.label.textContent = last[1].toFixed(s.digits ?? 1);
    });
    g.fillStyle = "#6b7c93";
    g.textAlign = "center";
    for (let sec = 0; sec <= this.windowS; sec += 30) {
      const x = pad.l + pw - (sec / this.windowS) * pw;
      g.fillText(sec === 0 ? "now" : `-${sec}s`, Math.min(Math.max(pad.l + 10, x), w - 14), h - 5);
    }
    g.textAlign = "left";
  }
}
