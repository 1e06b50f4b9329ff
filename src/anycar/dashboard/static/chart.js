// A small live chart on a canvas: several series over a sliding time window, each scaled to
// its own range, drawn at most once per animation frame.

export class LiveChart {
  constructor(canvas, { windowS = 120, series = [] } = {}) {
    this.canvas = canvas;
    this.windowS = windowS;
    this.series = series.map((s) => ({ ...s, points: [] }));
    this.dirty = true;
    this._loop = this._loop.bind(this);
    requestAnimationFrame(this._loop);
  }

  push(key, value, tMs = Date.now()) {
    const s = this.series.find((x) => x.key === key);
    if (!s || typeof value !== "number" || !Number.isFinite(value)) return;
    s.points.push([tMs, value]);
    const cutoff = tMs - this.windowS * 1000 - 2000;
    while (s.points.length && s.points[0][0] < cutoff) s.points.shift();
    this.dirty = true;
  }

  count() {
    return this.series.reduce((n, s) => n + s.points.length, 0);
  }

  _loop() {
    if (this.dirty) this.draw();
    this.dirty = false;
    requestAnimationFrame(this._loop);
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
    const pad = { l: 8, r: 8, t: 10, b: 22 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    const now = Date.now();
    const t0 = now - this.windowS * 1000;

    g.strokeStyle = "#1f2b3d";
    g.lineWidth = 1;
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#6b7c93";
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + (ph * i) / 4;
      g.beginPath(); g.moveTo(pad.l, y); g.lineTo(pad.l + pw, y); g.stroke();
    }
    for (let s = 0; s <= this.windowS; s += 30) {
      const x = pad.l + pw - (s / this.windowS) * pw;
      g.fillText(s === 0 ? "now" : `-${s}s`, Math.max(pad.l, x - 12), h - 6);
    }

    for (const s of this.series) {
      if (s.points.length < 1) continue;
      let lo = s.min ?? Infinity;
      let hi = s.max ?? -Infinity;
      for (const [, v] of s.points) { if (s.min === undefined) lo = Math.min(lo, v); if (s.max === undefined) hi = Math.max(hi, v); }
      if (hi - lo < (s.minSpan ?? 1)) { const mid = (hi + lo) / 2; lo = mid - (s.minSpan ?? 1) / 2; hi = mid + (s.minSpan ?? 1) / 2; }
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.lineJoin = "round";
      g.beginPath();
      let started = false;
      for (const [t, v] of s.points) {
        if (t < t0) continue;
        const x = pad.l + ((t - t0) / (this.windowS * 1000)) * pw;
        const y = pad.t + ph - ((v - lo) / (hi - lo)) * ph;
        if (!started) { g.moveTo(x, y); started = true; } else g.lineTo(x, y);
      }
      g.stroke();
      if (s.label) {
        const last = s.points[s.points.length - 1][1];
        s.label.textContent = last.toFixed(s.digits ?? 1);
      }
    }
  }
}
