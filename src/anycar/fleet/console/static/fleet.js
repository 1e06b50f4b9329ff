// The console's picture of the fleet: every vehicle with its type, state, last position, SoC
// and a short live trail, merged from the REST API and the live feed. Views subscribe to it.
import { api } from "./api.js";

const TRAIL = 12; // live positions kept per vehicle for the map's short trails

export class Fleet {
  constructor(config) {
    this.config = config;
    this.vehicles = new Map();
    this.listeners = new Set();
    this.positionListeners = new Set();
  }

  typeOf(v) {
    for (const rule of this.config.vehicles.rules) {
      if (rule.kind && rule.kind !== v.kind) continue;
      if (rule.brand && !(v.brand || "").toLowerCase().includes(rule.brand)) continue;
      return rule.type;
    }
    return "car";
  }

  // moving / idle / offline / revoked, from the hub's state, the age of the last fix and speed.
  stateOf(v, now = Date.now() / 1000) {
    const s = this.config.vehicles.states;
    if (v.revoked) return "revoked";
    if (v.online === false) return "offline";
    const ts = v.position ? v.position.ts : v.last_seen;
    if (!ts || now - ts > s.stale_s) return "offline";
    return v.position && (v.position.speed || 0) >= s.moving_kmh ? "moving" : "idle";
  }

  async load() {
    const [list, soc] = await Promise.all([
      api("/vehicles"),
      api(`/signals/last?path=${encodeURIComponent(this.config.soc_path)}`).catch(() => []),
    ]);
    const socs = new Map(soc.map((s) => [s.vehicle, s.value]));
    for (const v of list) {
      const old = this.vehicles.get(v.id);
      v.type = this.typeOf(v);
      v.soc = socs.has(v.id) ? socs.get(v.id) : old ? old.soc : null;
      v.trail = old ? old.trail : v.position ? [[v.position.lon, v.position.lat]] : [];
      this.vehicles.set(v.id, v);
    }
    this.emit();
  }

  async refreshSoc() {
    const soc = await api(`/signals/last?path=${encodeURIComponent(this.config.soc_path)}`);
    for (const s of soc) { const v = this.vehicles.get(s.vehicle); if (v) v.soc = s.value; }
    this.emit();
  }

  // A live message; returns the vehicle it moved, if any.
  apply(msg) {
    const v = this.vehicles.get(msg.vehicle);
    if (!v) return null;
    if (msg.type === "position") {
      if (v.position && msg.ts < v.position.ts) return null; // a late backlog never moves it back
      v.position = { ts: msg.ts, lat: msg.lat, lon: msg.lon, speed: msg.speed, heading: msg.heading };
      v.last_seen = Math.max(v.last_seen || 0, msg.ts);
      if (v.online === null || v.online === undefined) v.online = true;
      v.trail.push([msg.lon, msg.lat]);
      if (v.trail.length > TRAIL) v.trail.splice(0, v.trail.length - TRAIL);
      for (const fn of this.positionListeners) fn(v, msg);
      return v;
    }
    return null;
  }

  onChange(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  onPosition(fn) { this.positionListeners.add(fn); return () => this.positionListeners.delete(fn); }
  emit() { for (const fn of this.listeners) fn(this); }

  counts() {
    const c = { moving: 0, idle: 0, offline: 0, revoked: 0 };
    for (const v of this.vehicles.values()) c[this.stateOf(v)] += 1;
    return c;
  }

  brands() { return [...new Set([...this.vehicles.values()].map((v) => v.brand))].sort(); }
}

export function socBand(soc) {
  if (soc === null || soc === undefined) return "none";
  return soc > 50 ? "high" : soc >= 20 ? "mid" : "low";
}

export function ago(ts, now = Date.now() / 1000) {
  if (!ts) return "never";
  const s = Math.max(0, Math.round(now - ts));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ts * 1000).toISOString().slice(0, 10);
}
