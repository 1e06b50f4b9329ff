// The console's start: sign in with the API token, load the fleet, open the live feed, and show
// the page the URL names (#/map, #/vehicles, #/vehicles/ID).
import * as alerts from "./alerts.js";
import { api, Live, routes, setBase, token } from "./api.js";
import { Filters } from "./filters.js";
import { Fleet } from "./fleet.js";
import * as geofences from "./geofences.js";
import * as logistics from "./logistics.js";
import * as ota from "./ota.js";
import * as reports from "./reports.js";
import { LiveMap, setup } from "./map.js";
import { perf } from "./perf.js";
import { SideList } from "./sidelist.js";
import * as stations from "./stations.js";
import { renderTable } from "./vehicles.js";
import { VehiclePage } from "./vehicle.js";

const $ = (id) => document.getElementById(id);
const THEME_KEY = "anycar.fleet.theme";

const state = { config: null, fleet: null, map: null, live: null, basemap: null, page: null };

function theme() { return localStorage.getItem(THEME_KEY) || (matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark"); }

function showLogin(message = "") {
  $("shell").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  document.body.dataset.ready = "login";
  $("token").focus();
}

async function signIn(t) {
  token.set(t);
  try {
    await api("/vehicles");
  } catch (e) {
    token.clear();
    showLogin(e.status === 401 ? "This token is not valid here." : `The server answered: ${e.message}`);
    return;
  }
  start();
}

function signOut() {
  token.clear();
  if (state.live) state.live.close();
  location.hash = "";
  location.reload();
}

function setStatus(status, hello) {
  const chip = $("live-status");
  chip.dataset.status = status;
  chip.querySelector(".conn-text").textContent = status;
  if (hello) { $("user").textContent = `${hello.user} · ${hello.role}`; state.role = hello.role; }
}

function counts() {
  const c = state.fleet.counts();
  $("fleet-counts").replaceChildren(
    ...["moving", "idle", "offline"].map((k) => {
      const s = document.createElement("span");
      s.className = `count ${k}`;
      s.dataset.state = k;
      s.textContent = `${c[k]} ${k}`;
      return s;
    }));
}

function route() {
  const [path, query] = (location.hash.slice(1) || "/map").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] === "vehicles" && parts[1] ? "vehicle" : parts[0] === "packs" ? "stations" : parts[0] || "map";
  for (const section of document.querySelectorAll("#pages > .page")) section.hidden = section.dataset.page !== page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === (page === "vehicle" ? "vehicles" : page));
  if (state.page !== "vehicle" || page !== "vehicle") state.vehiclePage.close();
  state.page = page;
  if (page === "map") {
    state.map.map.resize();
    const id = params.get("vehicle");
    if (id) pick(id, true);
  } else if (page === "vehicles") {
    renderTable($("vehicle-rows"), state.fleet, state.tableFilters);
  } else if (page === "vehicle") {
    state.vehiclePage.open(decodeURIComponent(parts[1]));
  } else if (page === "alerts" && state.alertsPage) {
    state.alertsPage.load();
  } else if (page === "reports" && state.reportsPage) {
    state.reportsPage.load();
  } else if (page === "ota" && state.otaPage) {
    state.otaPage.open();
  } else if (page === "geofences" && state.geofencesPage) {
    state.geofencesPage.open();
  } else if (page === "logistics" && state.logisticsPage) {
    state.logisticsPage.open(parts[1]);
  } else if (page === "stations" && state.stationsPage) {
    const p = state.stationsPage;
    (parts[0] === "packs" ? p.passport(decodeURIComponent(parts[1] || "")) : parts[1] ? p.station(decodeURIComponent(parts[1])) : p.list()).catch(() => {});
  }
  document.body.dataset.page = page;
}

async function pick(id, fly = false) {
  state.selected = id;
  state.side.selected = id;
  state.map.select(id);
  state.side.render();
  const v = state.fleet.vehicles.get(id);
  if (!v) return;
  if (fly) state.map.flyTo(v);
  const card = $("hover-card");
  card.hidden = false;
  card.replaceChildren();
  const types = state.config.vehicles.types;
  const p = v.position;
  card.innerHTML = "";
  const h = document.createElement("div"); h.className = "hc-title"; h.textContent = v.id;
  const sub = document.createElement("div"); sub.className = "hc-sub"; sub.textContent = `${v.brand} · ${types[v.type].label} · ${state.fleet.stateOf(v)}`;
  const facts = document.createElement("div"); facts.className = "hc-facts";
  facts.textContent = [typeof v.soc === "number" ? `SoC ${v.soc.toFixed(0)} %` : null, p && typeof p.speed === "number" ? `${p.speed.toFixed(0)} km/h` : null].filter(Boolean).join(" · ");
  const open = document.createElement("a"); open.href = `#/vehicles/${encodeURIComponent(v.id)}`; open.textContent = "Open vehicle page →"; open.className = "hc-link";
  card.append(h, sub, facts, open);
  try {
    const track = await api(`/vehicles/${encodeURIComponent(id)}/track?day=${new Date().toISOString().slice(0, 10)}`);
    if (state.selected === id) state.map.showTrack(track);
  } catch { /* the card still shows */ }
}

async function start() {
  $("login").hidden = true;
  $("shell").hidden = false;
  const fleet = new Fleet(state.config);
  state.fleet = fleet;
  const [, basemap, have] = await Promise.all([fleet.load(), fetch("basemap.geojson").then((r) => r.json()), routes()]);
  state.basemap = basemap;
  state.routes = have;
  state.mapFilters = new Filters(fleet, () => state.side.render());
  state.tableFilters = new Filters(fleet, () => renderTable($("vehicle-rows"), fleet, state.tableFilters));
  state.mapFilters.render($("map-filters"));
  state.tableFilters.render($("list-filters"));
  state.mapFilters.updateBrands();
  state.tableFilters.updateBrands();
  state.side = new SideList($("side-list"), fleet, state.mapFilters, (id) => pick(id, true));
  state.map = new LiveMap($("map"), { fleet, basemap, theme: theme(), onSelect: (id) => pick(id) });
  state.vehiclePage = new VehiclePage($("page-vehicle"), { fleet, basemap, theme: theme(), routes: have });
  state.side.render();
  counts();
  state.map.changed();
  // Pages whose routes the server has (another room of the fleet builds them): shown, or left out.
  const has = (list) => list.every((r) => have.has(r));
  const enable = (name) => { document.querySelector(`#nav a[data-page='${name}']`).hidden = false; };
  if (has(alerts.ROUTES)) {
    enable("alerts");
    state.alertsPage = new alerts.AlertsPage($("page-alerts"), { onCount: (n) => { $("alert-count").textContent = n ? String(n) : ""; } });
    state.alertsPage.load();
  }
  if (has(reports.ROUTES)) {
    enable("reports");
    state.reportsPage = new reports.ReportsPage($("page-reports"), state.config.api);
  }
  if (has(ota.ROUTES)) {
    enable("ota");
    state.otaPage = new ota.RolloutsPage($("page-ota"));
  }
  if (has(geofences.ROUTES)) {
    enable("geofences");
    state.geofencesPage = new geofences.GeofencesPage($("page-geofences"), { fleet, basemap, theme: theme(),
      onChange: (fc) => geofences.showGeofences(state.map.map, fc) });
    state.map.ready.then(() => api("/geofences").then((fc) => geofences.showGeofences(state.map.map, fc))).catch(() => {});
  }
  if (has(logistics.ROUTES)) {
    enable("logistics");
    state.logisticsPage = new logistics.LogisticsPage($("page-logistics"), { fleet, basemap, theme: theme(), role: () => state.role, apiBase: state.config.api });
  }
  if (has(stations.ROUTES)) {
    enable("stations");
    state.stationsPage = new stations.StationsPage($("page-stations"), { fleet, role: () => state.role, routes: have });
    const markers = () => api("/stations").then((list) => stations.showStations(state.map.map, list)).catch(() => {});
    state.map.ready.then(markers);
    setInterval(markers, 30000);
  }
  fleet.onChange(() => { state.side.request(); counts(); state.map.changed(); });
  state.live = new Live(state.config.live, (msg) => perf.time("message", () => {
    if (msg.type === "position") {
      if (!fleet.vehicles.has(msg.vehicle)) { fleet.load().catch(() => {}); return; } // a new vehicle
      fleet.apply(msg);
      state.map.moved(msg);
      state.side.request();
    } else if (msg.type === "event") {
      state.vehiclePage.liveEvent(msg);
    } else if ((msg.type === "alert" || msg.type === "alert_withdrawn") && state.alertsPage && !state.alertReload) {
      state.alertReload = setTimeout(() => { state.alertReload = null; state.alertsPage.load(); }, 1000);
    }
  }), setStatus);
  state.live.open();
  setInterval(() => fleet.refreshSoc().catch(() => {}), state.config.soc_refresh_s * 1000);
  setInterval(() => {
    counts();
    if (state.page === "vehicles") renderTable($("vehicle-rows"), fleet, state.tableFilters);
  }, 2000);
  window.addEventListener("hashchange", route);
  await state.map.ready;
  route();
  document.body.dataset.ready = "true";
}

async function boot() {
  state.config = await fetch("config.json").then((r) => r.json());
  setBase(state.config.api);
  setup(new URL("vendor/maplibre-gl/maplibre-gl-csp-worker.js", location.href).href);
  document.documentElement.dataset.theme = theme();
  $("theme").addEventListener("click", () => {
    const next = theme() === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    document.documentElement.dataset.theme = next;
    if (state.map) state.map.setTheme(next);
    if (state.logisticsPage) { state.logisticsPage.theme = next; if (state.logisticsPage.map) state.logisticsPage.map.setTheme(next); }
    if (state.vehiclePage) {
      state.vehiclePage.theme = next;
      if (state.vehiclePage.map) state.vehiclePage.map.setTheme(next);
    }
  });
  $("sign-out").addEventListener("click", signOut);
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
  window.addEventListener("anycar:unauthenticated", () => { token.clear(); showLogin("Signed out: the token is no longer valid."); });
  if (token.get()) signIn(token.get());
  else showLogin();
}

window.anycarConsole = state; // read by the browser tests and the bench
boot();
