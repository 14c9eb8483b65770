// Inline SVG charts of an AnalysisRun metric's measurements (no chart library).
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

// points: [{t: ms, y: number, low?: number, high?: number, phase}]; a band when low/high are given.
function lineChart(title, points, opts) {
  const width = 360, height = 140, pad = 34;
  const svg = svgEl("svg", {width, height, role: "img", "aria-label": title});
  const usable = points.filter((p) => p.y !== null || (p.low !== null && p.high !== null));
  if (usable.length === 0) {
    const text = svgEl("text", {x: 10, y: height / 2, "font-size": 12, fill: "#777"});
    text.textContent = "no numeric measurements yet";
    svg.appendChild(text);
    return svg;
  }
  const ys = usable.flatMap((p) => [p.y, p.low, p.high]).filter((v) => v !== null && isFinite(v));
  if (opts && opts.zero) ys.push(0);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (lo === hi) { lo -= 1; hi += 1; }
  const t0 = usable[0].t, t1 = usable[usable.length - 1].t;
  const x = (t) => pad + (t1 === t0 ? (width - 2 * pad) / 2 : (t - t0) / (t1 - t0) * (width - 2 * pad));
  const y = (v) => height - pad / 2 - (v - lo) / (hi - lo) * (height - pad);
  const banded = usable.filter((p) => p.low !== null && p.high !== null && isFinite(p.low) && isFinite(p.high));
  if (banded.length > 0) {
    const upper = banded.map((p) => `${x(p.t)},${y(p.high)}`);
    const lower = banded.slice().reverse().map((p) => `${x(p.t)},${y(p.low)}`);
    svg.appendChild(svgEl("polygon", {points: upper.concat(lower).join(" "), fill: "#1d5fbf", "fill-opacity": 0.15,
                                      class: "interval"}));
  }
  if (opts && opts.zero && lo < 0 && hi > 0) {
    svg.appendChild(svgEl("line", {x1: pad, x2: width - pad, y1: y(0), y2: y(0), stroke: "#999",
                                   "stroke-dasharray": "3 3"}));
  }
  const line = usable.filter((p) => p.y !== null && isFinite(p.y));
  svg.appendChild(svgEl("polyline", {points: line.map((p) => `${x(p.t)},${y(p.y)}`).join(" "), fill: "none",
                                     stroke: "#1d5fbf", "stroke-width": 2}));
  for (const p of line) {
    const color = {Successful: "#18794e", Failed: "#c62828", Error: "#c62828", Inconclusive: "#a15c00"}[p.phase]
      || "#1d5fbf";
    const dot = svgEl("circle", {cx: x(p.t), cy: y(p.y), r: 3, fill: color, class: "point"});
    const tip = svgEl("title");
    tip.textContent = `${new Date(p.t).toLocaleTimeString()}: ${p.label} (${p.phase})`;
    dot.appendChild(tip);
    svg.appendChild(dot);
  }
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    if (t1 === t0 && anchor === "end") break;
    const text = svgEl("text", {x: x(t), y: height - 2, "font-size": 10, fill: "#555", "text-anchor": anchor});
    text.textContent = new Date(t).toLocaleTimeString();
    svg.appendChild(text);
  }
  for (const [value, where] of [[hi, pad / 2 + 4], [lo, height - pad / 2]]) {
    const text = svgEl("text", {x: 2, y: where, "font-size": 10, fill: "#555"});
    text.textContent = Number(value.toPrecision(3)).toString();
    svg.appendChild(text);
  }
  return svg;
}

// A metric's series as a chart: the judge's estimate and interval, or the measured values.
function metricChart(metric) {
  const judge = metric.series.some((p) => p.estimate !== null || p.low !== null);
  const points = metric.series.map((p) => ({
    t: Date.parse(p.time) || 0,
    y: judge ? p.estimate : p.value,
    low: judge ? p.low : null,
    high: judge ? p.high : null,
    phase: p.phase,
    label: judge ? `estimate ${p.estimate} in [${p.low}, ${p.high}] ${p.decision}` : p.text,
  }));
  const title = judge ? `${metric.name}: estimate and interval` : `${metric.name}: measured value`;
  return lineChart(title, points, {zero: judge});
}
