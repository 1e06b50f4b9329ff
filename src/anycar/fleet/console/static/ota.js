// The OTA rollouts page (shown when the server has /api/rollouts): every rollout of the tenant
// with its release, state and progress, paused, resumed or aborted from here (owners), and the
// firmware ledger. Refreshed every few seconds while it is open.
import { api } from "./api.js";
import { el } from "./dom.js";
import { ago } from "./fleet.js";

export const ROUTES = ["/api/rollouts", "/api/firmware"];
const REFRESH_MS = 4000;

function hex(n) { return `0x${Number(n).toString(16).toUpperCase().padStart(4, "0")}`; }

export class RolloutsPage {
  constructor(root) {
    this.root = root;
    this.rows = el("div", { class: "rollouts", "data-testid": "rollouts" });
    this.ledger = el("tbody", { "data-testid": "firmware-ledger" });
    this.error = el("p", { class: "error", "data-testid": "rollouts-error" });
    root.replaceChildren(
      el("div", { class: "page-head" }, el("h1", { text: "OTA rollouts" }), this.error),
      this.rows,
      el("h2", { class: "section-title", text: "Firmware ledger" }),
      el("div", { class: "table-wrap" }, el("table", { class: "table" },
        el("thead", {}, el("tr", {}, ...["Release", "Vendor / product", "Version", "Size", "Notes", "Uploaded"].map((t) => el("th", { text: t })))),
        this.ledger)));
  }

  open() {
    this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => { if (!this.root.hidden) this.load(); else clearInterval(this.timer); }, REFRESH_MS);
  }

  async load() {
    try {
      const [rollouts, releases] = await Promise.all([api("/rollouts"), api("/firmware")]);
      this.render(rollouts);
      this.ledger.replaceChildren(...(releases.length ? releases.map((r) => el("tr", {},
        el("td", { text: `#${r.id}` }), el("td", { class: "mono", text: `${hex(r.vendor_id)} / ${hex(r.product_id)}` }),
        el("td", { class: "strong", text: r.version }), el("td", { class: "num", text: `${(r.size / 1024).toFixed(1)} KiB` }),
        el("td", { text: r.notes || "" }), el("td", { text: ago(r.uploaded) })))
        : [el("tr", {}, el("td", { colspan: "6", class: "empty", text: "No firmware uploaded (anycar fleet firmware upload)." }))]));
      this.root.dataset.loaded = "true";
    } catch (e) { this.error.textContent = e.message; }
  }

  render(rollouts) {
    this.rows.replaceChildren(...(rollouts.length ? rollouts.map((r) => this.card(r))
      : [el("div", { class: "card empty", text: "No rollouts yet (anycar fleet rollout start)." })]));
  }

  card(r) {
    const total = Math.max(1, r.targets);
    const seg = (cls, n) => el("span", { class: `seg ${cls}`, style: `width:${(100 * n) / total}%`, title: `${n} ${cls}` });
    const act = (what, label) => el("button", { type: "button", class: "small-button", "data-action": what, text: label,
      onclick: async () => {
        try { await api(`/rollouts/${r.id}/${what}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }); }
        catch (e) { this.error.textContent = e.message; }
        this.load();
      } });
    const actions = [];
    if (r.state === "running") actions.push(act("pause", "Pause"));
    if (r.state === "paused") actions.push(act("resume", "Resume"));
    if (r.state === "running" || r.state === "paused") actions.push(act("abort", "Abort"));
    const rel = r.release;
    return el("section", { class: "card rollout", "data-rollout": String(r.id), "data-state": r.state },
      el("div", { class: "rollout-head" },
        el("div", {}, el("div", { class: "strong", text: `Rollout #${r.id} · ${rel.version}` }),
          el("div", { class: "muted small", text: `${hex(rel.vendor_id)} / ${hex(rel.product_id)} · ${r.percent} % of the fleet · at most ${r.max_in_flight} at once, pause after ${r.max_failures} failures` })),
        el("span", { class: `state-tag ${r.state === "running" ? "moving" : r.state === "paused" ? "idle" : "offline"}`, "data-testid": "rollout-state", text: r.state }),
        el("div", { class: "spacer" }), ...actions),
      el("div", { class: "progress", "data-testid": "rollout-progress" }, seg("succeeded", r.succeeded), seg("failed", r.failed), seg("in-flight", r.in_flight)),
      el("div", { class: "muted small", "data-testid": "rollout-counts",
        text: `${r.succeeded} updated · ${r.failed} failed · ${r.in_flight} in flight · ${r.waiting} waiting · ${r.targets} targets${r.reason ? ` — ${r.reason}` : ""}` }));
  }
}
