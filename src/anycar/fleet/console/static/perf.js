// What the console measures about itself (the bench reads window.anycarPerf): main-thread long
// tasks (PerformanceObserver 'longtask', every task over 50 ms) and, for every map flush, how old
// its oldest position was (seconds since the server committed it) when the map drew it.
const longtasks = [];
const latencies = []; // per flush: seconds from the oldest position's commit to the frame that shows it
let flushes = [];

try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) longtasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: "longtask", buffered: true });
} catch { /* a browser without longtask timing: the lists stay empty and say so (supported: false) */ }

const own = {}; // name -> {n, total, max} in ms: the console's own work, to tell it from MapLibre's

export const perf = {
  time(name, fn) {
    const t0 = performance.now();
    try { return fn(); } finally {
      const d = performance.now() - t0;
      const o = own[name] || (own[name] = { n: 0, total: 0, max: 0 });
      o.n += 1; o.total += d; o.max = Math.max(o.max, d);
    }
  },
  flushed(pending, t0) {
    performance.mark("anycar:flush");
    flushes.push({ ...pending, t0 });
  },
  drawn() {
    performance.mark("anycar:drawn");
    const now = Date.now() / 1000;
    for (const f of flushes) latencies.push({ worst: now - f.oldest, best: now - f.newest, n: f.n, oldest: f.oldest, drawn: now });
    flushes = [];
  },
};

window.anycarPerf = {
  supported: PerformanceObserver.supportedEntryTypes.includes("longtask"),
  longtasks,
  latencies,
  own,
  reset() { longtasks.length = 0; latencies.length = 0; for (const k of Object.keys(own)) delete own[k]; },
};
