// The fleet's REST API and live feed with the user's token (sessionStorage, this tab only).
const KEY = "anycar.fleet.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let base = "/api";
export function setBase(url) { base = url; }

export async function api(path, options = {}) {
  const t = token.get();
  const response = await fetch(base + path, {
    ...options,
    headers: { ...(options.headers || {}), Authorization: `Bearer ${t || ""}` },
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error.message || message; } catch { /* not JSON */ }
    if (response.status === 401) window.dispatchEvent(new CustomEvent("anycar:unauthenticated"));
    throw new ApiError(response.status, message);
  }
  return response.json();
}

// Routes the server has (from /openapi.json): a page whose routes are missing is left out.
export async function routes() {
  const doc = await fetch("/openapi.json").then((r) => r.json());
  return new Set(Object.keys(doc.paths || {}));
}

// The live feed: the token as first message, then positions and events; reconnects with backoff.
export class Live {
  constructor(url, onMessage, onStatus) {
    this.url = new URL(url, location.href);
    this.url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.delay = 500;
    this.closed = false;
  }
  open() {
    this.onStatus("connecting");
    const ws = new WebSocket(this.url.href);
    this.ws = ws;
    ws.onopen = () => ws.send(token.get() || "");
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === "hello") { this.delay = 500; this.onStatus("live", msg); return; }
      this.onMessage(msg);
    };
    ws.onclose = (e) => {
      if (this.closed) return;
      if (e.code === 4401) { this.onStatus("offline"); window.dispatchEvent(new CustomEvent("anycar:unauthenticated")); return; }
      this.onStatus(e.code === 4503 ? "no feed" : "offline");
      setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }
  close() { this.closed = true; if (this.ws) this.ws.close(); }
}
