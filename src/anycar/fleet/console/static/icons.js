// The map's vehicle icons, drawn once on small canvases (sprites) that the vehicle overlay
// stamps: a disc in the state's colour with the type's glyph, a heading pointer, and a battery
// gauge per 10 % of state of charge. No image files, no sprite server.
export const STATE_COLOURS = { moving: "#22c55e", idle: "#f59e0b", offline: "#6b7280", revoked: "#ef4444" };
export const SOC_COLOURS = { high: "#34d399", mid: "#fbbf24", low: "#f43f5e" };
const RATIO = Math.min(2, window.devicePixelRatio || 1); // sprites at the screen's scale: stamped unscaled
const HEADINGS = 36; // pointer sprites pre-rotated every 10 degrees: no rotation per vehicle and frame

function canvas(w, h) {
  const c = document.createElement("canvas");
  c.width = w * RATIO; c.height = h * RATIO;
  const ctx = c.getContext("2d");
  ctx.scale(RATIO, RATIO);
  return [c, ctx];
}


function glyph(ctx, icon) {
  ctx.fillStyle = "#fff";
  ctx.strokeStyle = "#fff";
  if (icon === "van") { // a small pickup / delivery van, side view
    ctx.beginPath(); ctx.roundRect(7.5, 11, 9, 7, 1.2); ctx.fill();
    ctx.beginPath(); ctx.moveTo(16.5, 13); ctx.lineTo(20, 13); ctx.lineTo(22.5, 16); ctx.lineTo(22.5, 18); ctx.lineTo(16.5, 18); ctx.closePath(); ctx.fill();
    ctx.beginPath(); ctx.arc(10.5, 19.3, 1.8, 0, 7); ctx.arc(19.5, 19.3, 1.8, 0, 7); ctx.fill();
  } else if (icon === "car") { // a passenger car, side view
    ctx.beginPath(); ctx.moveTo(7, 18.5); ctx.lineTo(7.8, 15.4); ctx.lineTo(10.6, 14.6); ctx.lineTo(12.6, 11.8); ctx.lineTo(18.4, 11.8);
    ctx.lineTo(20.8, 14.6); ctx.lineTo(22.6, 15.2); ctx.lineTo(23, 18.5); ctx.closePath(); ctx.fill();
    ctx.beginPath(); ctx.arc(10.8, 19, 1.8, 0, 7); ctx.arc(19.2, 19, 1.8, 0, 7); ctx.fill();
  } else { // a tracker: a location dot with a ring
    ctx.lineWidth = 1.8; ctx.beginPath(); ctx.arc(15, 15, 5.5, 0, 7); ctx.stroke();
    ctx.beginPath(); ctx.arc(15, 15, 2.4, 0, 7); ctx.fill();
  }
}

function vehicleIcon(icon, colour) {
  const [c, ctx] = canvas(30, 30);
  ctx.shadowColor = "rgba(0,0,0,.35)"; ctx.shadowBlur = 3;
  ctx.beginPath(); ctx.arc(15, 15, 12, 0, 7); ctx.fillStyle = colour; ctx.fill();
  ctx.shadowBlur = 0;
  ctx.lineWidth = 2; ctx.strokeStyle = "#fff"; ctx.stroke();
  glyph(ctx, icon);
  return c;
}

function pointer(colour, degrees) { // centred on the vehicle; the tip points to the heading
  const [c, ctx] = canvas(44, 44);
  ctx.translate(22, 22); ctx.rotate((degrees * Math.PI) / 180); ctx.translate(-22, -22);
  ctx.beginPath(); ctx.moveTo(22, 1.5); ctx.lineTo(27.5, 9.5); ctx.lineTo(16.5, 9.5); ctx.closePath();
  ctx.fillStyle = colour; ctx.fill(); ctx.lineWidth = 1.2; ctx.strokeStyle = "#fff"; ctx.stroke();
  return c;
}

function battery(tenth) {
  const [c, ctx] = canvas(26, 10);
  const band = tenth > 5 ? "high" : tenth >= 2 ? "mid" : "low";
  ctx.fillStyle = "rgba(15,23,42,.85)"; ctx.beginPath(); ctx.roundRect(0.5, 0.5, 22, 9, 2.5); ctx.fill();
  ctx.fillRect(23, 3, 2.5, 4);
  ctx.fillStyle = SOC_COLOURS[band];
  ctx.beginPath(); ctx.roundRect(2, 2, Math.max(1.5, 19 * tenth / 10), 6, 1.5); ctx.fill();
  return c;
}

// Every sprite, by name: vehicle[`${type}-${state}`], pointer[state][heading / 10°], battery[0..10].
export function sprites(types) {
  const out = { vehicle: {}, pointer: {}, battery: [] };
  for (const [type, t] of Object.entries(types)) {
    for (const [state, colour] of Object.entries(STATE_COLOURS)) out.vehicle[`${type}-${state}`] = vehicleIcon(t.icon, colour);
  }
  for (const [state, colour] of Object.entries(STATE_COLOURS)) {
    out.pointer[state] = Array.from({ length: HEADINGS }, (_, i) => pointer(colour, (i * 360) / HEADINGS));
  }
  for (let i = 0; i <= 10; i += 1) out.battery.push(battery(i));
  return out;
}

// The same glyph as an inline SVG-free canvas data URL, for the lists.
const cache = new Map();
export function iconUrl(icon, state) {
  const key = `${icon}-${state}`;
  if (!cache.has(key)) {
    const [c, ctx] = canvas(30, 30);
    ctx.beginPath(); ctx.arc(15, 15, 12, 0, 7); ctx.fillStyle = STATE_COLOURS[state]; ctx.fill();
    glyph(ctx, icon);
    cache.set(key, c.toDataURL());
  }
  return cache.get(key);
}

export function pointerIndex(degrees) { return ((Math.round(degrees / (360 / HEADINGS)) % HEADINGS) + HEADINGS) % HEADINGS; }
