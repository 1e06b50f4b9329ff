// A small W3C VISS v2 client over WebSocket (subprotocol "VISSv2"): get, set, subscribe,
// unsubscribe. Values travel as strings, as the spec says; callers convert them.
// It reconnects with backoff and re-subscribes what was subscribed before.

export class VissError extends Error {
  constructor(error) {
    const e = error || {};
    super(`${e.number || "?"} ${e.reason || "error"}${e.message ? ": " + e.message : ""}`);
    this.number = e.number;
    this.reason = e.reason;
    this.detail = e.message;
  }
}

export class VissClient {
  constructor(url, { timeoutMs = 5000, onStatus = () => {} } = {}) {
    this.url = url;
    this.timeoutMs = timeoutMs;
    this.onStatus = onStatus;
    this.nextId = 1;
    this.pending = new Map(); // requestId -> {resolve, reject, timer}
    this.subs = new Map(); // local key -> {path, filter, handler, subscriptionId}
    this.bySubId = new Map(); // subscriptionId -> local key
    this.early = new Map(); // subscriptionId -> notifications that came before the response
    this.ws = null;
    this.backoff = 500;
    this.closed = false;
    this.status = "connecting";
  }

  connect() {
    this.closed = false;
    this._open();
    return this;
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }

  _setStatus(status, detail) {
    this.status = status;
    this.onStatus(status, detail);
  }

  _open() {
    this._setStatus("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, "VISSv2");
    } catch (err) {
      this._setStatus("offline", String(err));
      this._retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 500;
      this._setStatus("live");
      for (const [key, sub] of this.subs) this._sendSubscribe(key, sub);
    };
    ws.onmessage = (event) => this._onMessage(event.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new VissError({ number: "503", reason: "service_unavailable", message: "connection closed" }));
      }
      this.pending.clear();
      this.bySubId.clear();
      for (const sub of this.subs.values()) sub.subscriptionId = null;
      this._setStatus("offline");
      if (!this.closed) this._retry();
    };
    ws.onerror = () => {};
  }

  _retry() {
    setTimeout(() => { if (!this.closed) this._open(); }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 8000);
  }

  _onMessage(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (msg.action === "subscription") {
      const id = String(msg.subscriptionId);
      const key = this.bySubId.get(id);
      if (key === undefined) {
        const list = this.early.get(id) || [];
        list.push(msg);
        this.early.set(id, list.slice(-20));
        return;
      }
      this._deliver(key, msg);
      return;
    }
    const rid = msg.requestId !== undefined ? String(msg.requestId) : null;
    const p = rid !== null ? this.pending.get(rid) : undefined;
    if (!p) return;
    this.pending.delete(rid);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new VissError(msg.error));
    else p.resolve(msg);
  }

  _deliver(key, msg) {
    const sub = this.subs.get(key);
    if (!sub) return;
    if (msg.error) { sub.handler(null, new VissError(msg.error)); return; }
    for (const item of dataItems(msg.data)) sub.handler(item);
  }

  _request(body) {
    const requestId = String(this.nextId++);
    const msg = { ...body, requestId };
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new VissError({ number: "503", reason: "service_unavailable", message: "not connected" }));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new VissError({ number: "408", reason: "timeout", message: `${body.action} ${body.path || ""}` }));
      }, this.timeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
      this.ws.send(JSON.stringify(msg));
    });
  }

  /** Current value(s): a list of {path, value, ts}. */
  async get(path, filter) {
    const body = { action: "get", path };
    if (filter) body.filter = filter;
    const resp = await this._request(body);
    return dataItems(resp.data);
  }

  /** Recorded values of the last ``period`` (ISO 8601, e.g. PT2M), oldest first: [{path, value, ts}]. */
  async history(path, period = "PT2M") {
    const resp = await this._request({ action: "get", path, filter: { type: "history", parameter: period } });
    const out = [];
    for (const d of Array.isArray(resp.data) ? resp.data : resp.data ? [resp.data] : []) {
      for (const dp of Array.isArray(d.dp) ? d.dp : [d.dp]) if (dp) out.push({ path: d.path, value: dp.value, ts: dp.ts });
    }
    return out;
  }

  /** Ask the actuator's provider to take a value; VISS carries it as a string. */
  async set(path, value) {
    await this._request({ action: "set", path, value: toText(value) });
  }

  /** Subscribe; the handler gets {path, value, ts} for every notification. Returns an unsubscribe function. */
  subscribe(path, handler, filter) {
    const key = `s${this.nextId++}`;
    const sub = { path, filter, handler, subscriptionId: null };
    this.subs.set(key, sub);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this._sendSubscribe(key, sub);
    return () => this._unsubscribe(key);
  }

  async _sendSubscribe(key, sub) {
    const body = { action: "subscribe", path: sub.path };
    if (sub.filter) body.filter = sub.filter;
    try {
      const resp = await this._request(body);
      if (!this.subs.has(key)) {
        this._request({ action: "unsubscribe", subscriptionId: resp.subscriptionId }).catch(() => {});
        return;
      }
      const id = String(resp.subscriptionId);
      sub.subscriptionId = id;
      this.bySubId.set(id, key);
      for (const msg of this.early.get(id) || []) this._deliver(key, msg);
      this.early.delete(id);
    } catch (err) {
      sub.handler(null, err);
    }
  }

  async _unsubscribe(key) {
    const sub = this.subs.get(key);
    this.subs.delete(key);
    if (sub && sub.subscriptionId) {
      this.bySubId.delete(sub.subscriptionId);
      try { await this._request({ action: "unsubscribe", subscriptionId: sub.subscriptionId }); } catch { /* gone already */ }
    }
  }
}

/** Flatten a VISS data member (object or array; dp object or array) into {path, value, ts} items. */
export function dataItems(data) {
  if (!data) return [];
  const out = [];
  for (const d of Array.isArray(data) ? data : [data]) {
    const dps = Array.isArray(d.dp) ? d.dp : [d.dp];
    const last = dps[dps.length - 1];
    if (last) out.push({ path: d.path, value: last.value, ts: last.ts });
  }
  return out;
}

export function toText(value) {
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return JSON.stringify(value);
  return String(value);
}

/** Parse a VISS string value into a JS value by the signal's VSS datatype. */
export function parseValue(text, datatype) {
  if (text === null || text === undefined) return null;
  if (typeof text !== "string") return text;
  if (datatype && datatype.endsWith("[]")) { try { return JSON.parse(text); } catch { return text; } }
  if (datatype === "boolean" || text === "true" || text === "false") {
    if (text === "true") return true;
    if (text === "false") return false;
  }
  if (datatype === "string") return text;
  if (text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text;
}
