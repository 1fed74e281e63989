// Plain SVG charts drawn here (no charting library): line charts with markers, bands, bars and
// vertical marks, and their legends. Colours follow the PNG figures (crossbar_hil.reports.plots).

const NS = "http://www.w3.org/2000/svg";

export const COLORS = {
  plus: "#1f77b4", // G+ (tab:blue in the PNGs)
  minus: "#d62728", // G- (tab:red)
  unused: "#8c8c8c",
  reset: "#ff7f0e", // tab:orange
  converged: "#222222", // not a neuron colour (neuron 1 is green)
  neurons: ["#9467bd", "#2ca02c", "#8c564b", "#e377c2", "#bcbd22", "#17becf"],
  inputs: ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"],
};
export const DASHES = ["", "6 3", "2 3", "8 3 2 3"];
export const MARKERS = ["circle", "square", "triangle", "diamond"];

const MARKED_POINTS = 40; // Up to this many points a line carries a marker on each.

export function svg(tag, attrs = {}, parent = null) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined && value !== null) el.setAttribute(key, value);
  if (parent) parent.append(el);
  return el;
}

/** About n round tick values covering [lo, hi]. */
export function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function label(v) {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : String(+v.toPrecision(4));
}

/** [lo, hi] of the values, widened a little (and to a span when they are all equal). */
export function extent(values, pad = 0.05) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (lo === Infinity) return [0, 1];
  if (hi === lo) return [lo - (Math.abs(lo) || 1) * 0.1, hi + (Math.abs(hi) || 1) * 0.1];
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

function marker(kind, x, y, color, parent, size = 3) {
  if (kind === "square") return svg("rect", { x: x - size, y: y - size, width: 2 * size, height: 2 * size, fill: color }, parent);
  if (kind === "triangle") return svg("path", { d: `M${x},${y - size * 1.3}L${x + size * 1.2},${y + size}L${x - size * 1.2},${y + size}Z`, fill: color }, parent);
  if (kind === "diamond") return svg("path", { d: `M${x},${y - size * 1.4}L${x + size * 1.2},${y}L${x},${y + size * 1.4}L${x - size * 1.2},${y}Z`, fill: color }, parent);
  return svg("circle", { cx: x, cy: y, r: size, fill: color }, parent);
}

/**
 * A chart as an <svg> element.
 * opts: width, height, title, titleColor, xLabel, yLabel, x: [lo, hi], y: [lo, hi], compact,
 *   series: [{label, points: [[x, y]], color, dash, marker, step}],
 *   bars: [{label, points: [[x, y]], color}] (grouped side by side at each x),
 *   bands: [{lo, hi, color}], vlines: [{x, color, dash}], hlines: [{y, color}], describe (aria text).
 */
export function chart(opts) {
  const { width = 520, height = 210, compact = false, series = [], bars = [], bands = [], vlines = [], hlines = [] } = opts;
  const m = compact ? { l: 38, r: 6, t: 18, b: 18 } : { l: 60, r: 12, t: opts.title ? 24 : 10, b: 38 };
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": opts.describe || opts.title || "chart" });
  const [x0, x1] = opts.x;
  const [y0, y1] = opts.y;
  const px = (x) => m.l + ((x - x0) / (x1 - x0 || 1)) * (width - m.l - m.r);
  const py = (y) => height - m.b - ((y - y0) / (y1 - y0 || 1)) * (height - m.t - m.b);
  if (opts.title) svg("text", { x: m.l, y: compact ? 12 : 15, class: "chart-title", fill: opts.titleColor || "currentColor" }, root).textContent = opts.title;
  const plot = svg("g", {}, root);
  svg("rect", { x: m.l, y: m.t, width: width - m.l - m.r, height: height - m.t - m.b, class: "frame" }, plot);
  for (const band of bands) {
    const top = py(Math.min(band.hi, y1));
    svg("rect", { x: m.l, y: top, width: width - m.l - m.r, height: Math.max(0, py(Math.max(band.lo, y0)) - top), fill: band.color, "fill-opacity": 0.15 }, plot);
  }
  for (const t of ticks(y0, y1, compact ? 4 : 5)) {
    svg("line", { x1: m.l, x2: width - m.r, y1: py(t), y2: py(t), class: "grid" }, plot);
    svg("text", { x: m.l - 4, y: py(t) + 3, class: "tick", "text-anchor": "end" }, plot).textContent = label(t);
  }
  const xt = ticks(x0, x1, compact ? 3 : 6).filter((t) => Number.isInteger(t) || x1 - x0 > 10);
  for (const t of xt) {
    svg("text", { x: px(t), y: height - m.b + (compact ? 11 : 13), class: "tick", "text-anchor": "middle" }, plot).textContent = label(t);
  }
  for (const h of hlines) svg("line", { x1: m.l, x2: width - m.r, y1: py(h.y), y2: py(h.y), stroke: h.color || "#bbb" }, plot);
  if (!compact && opts.xLabel) svg("text", { x: (m.l + width - m.r) / 2, y: height - 4, class: "axis-label", "text-anchor": "middle" }, root).textContent = opts.xLabel;
  if (opts.yLabel) {
    svg("text", { transform: `translate(${compact ? 9 : 13},${(m.t + height - m.b) / 2}) rotate(-90)`, class: "axis-label", "text-anchor": "middle" }, root).textContent = opts.yLabel;
  }
  const barWidth = ((width - m.l - m.r) / Math.max(1, x1 - x0 + 1)) * 0.8;
  bars.forEach((b, i) => {
    const w = barWidth / bars.length;
    for (const [x, y] of b.points) {
      const left = px(x) - barWidth / 2 + i * w;
      svg("rect", { x: left, y: py(Math.max(y, 0)), width: Math.max(w - 0.5, 0.5), height: Math.max(0, py(0) - py(Math.max(y, 0))), fill: b.color, class: "bar" }, plot);
    }
  });
  series.forEach((s, index) => {
    if (!s.points.length) return;
    let d = "";
    s.points.forEach(([x, y], i) => {
      if (!Number.isFinite(y)) return;
      if (s.step && i > 0) d += `H${px(x)}V${py(y)}`;
      else d += `${d ? "L" : "M"}${px(x)},${py(y)}`;
    });
    svg("path", { d, fill: "none", stroke: s.color, "stroke-width": compact ? 1.5 : 1.8, "stroke-dasharray": s.dash || undefined, class: "line" }, plot);
    // Markers tell overlapping lines apart: on every point of a short series, else every
    // k-th point, each series starting at its own offset so coinciding lines show all markers.
    const every = s.points.length <= MARKED_POINTS ? 1 : Math.ceil(s.points.length / 12);
    const kind = s.marker || "circle";
    s.points.forEach(([x, y], i) => {
      if (Number.isFinite(y) && (i + index) % every === 0) marker(kind, px(x), py(y), s.color, plot, compact ? 2 : 3);
    });
  });
  for (const v of vlines) {
    svg("line", { x1: px(v.x), x2: px(v.x), y1: m.t, y2: height - m.b, stroke: v.color, "stroke-dasharray": v.dash || "4 3", "stroke-width": 1.3 }, plot);
    if (v.marker) marker("triangle", px(v.x), height - m.b - 4, v.color, plot, compact ? 3 : 4);
  }
  return root;
}

/** A legend as an HTML list: a small line (dash, marker) or patch per entry. */
export function legend(entries) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const e of entries) {
    const item = document.createElement("li");
    const sw = svg("svg", { width: 30, height: 12, "aria-hidden": "true" }, item);
    if (e.patch) svg("rect", { x: 2, y: 1, width: 26, height: 10, fill: e.color, "fill-opacity": 0.3 }, sw);
    else {
      svg("line", { x1: 1, x2: 29, y1: 6, y2: 6, stroke: e.color, "stroke-width": 2, "stroke-dasharray": e.dash || undefined }, sw);
      if (e.marker) marker(e.marker, 15, 6, e.color, sw, 3);
    }
    item.append(document.createTextNode(e.label));
    list.append(item);
  }
  return list;
}
