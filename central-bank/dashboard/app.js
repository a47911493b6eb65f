// The regulators' dashboard: signs in with the central bank API's token endpoint, keeps the
// token in memory only, and redraws from GET /v1/dashboard every two seconds. Charts are SVG
// drawn here; nothing is loaded from anywhere but this server.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const REFRESH_MS = 2000;
let token = null;
let timer = null;

const $ = (id) => document.getElementById(id);

function money(minor) {
  const n = Number(minor || 0);
  const sign = n < 0 ? "-" : "";
  const abs = Math.abs(n);
  const major = Math.floor(abs / 100).toLocaleString("en-US");
  const cents = String(abs % 100).padStart(2, "0");
  return sign + major + "." + cents;
}

function count(n) {
  return Number(n || 0).toLocaleString("en-US");
}

function ms(v) {
  return v === null || v === undefined ? "–" : v + " ms";
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function el(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Replaces a table's body with one row per item: {className, data (dataset), cells (text)}.
function fillTable(id, items, describe) {
  const body = $(id).tBodies[0];
  clear(body);
  for (const item of items) {
    const { className, data, cells } = describe(item);
    const row = document.createElement("tr");
    row.className = className;
    for (const [k, v] of Object.entries(data)) row.dataset[k] = String(v);
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    body.appendChild(row);
  }
}

const W = 640, H = 220, L = 70, R = 16, T = 12, B = 28;

// A line chart of points {x, y} (x in ms), with an optional second series on its own scale and
// markers {x, kind} drawn on the x axis.
function lineChart(svg, points, options) {
  clear(svg);
  const opts = options || {};
  svg.appendChild(el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  svg.appendChild(el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  if (points.length === 0) {
    svg.appendChild(el("text", { x: L + 8, y: H / 2 }, "waiting for samples"));
    return;
  }
  const xs = points.map((p) => p.x);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const ys = points.map((p) => p.y);
  const yMax = Math.max(...ys, 1);
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y, max) => H - B - (y / max) * (H - T - B);
  const path = points.map((p, i) => (i ? "L" : "M") + sx(p.x).toFixed(1) + " " + sy(p.y, yMax).toFixed(1)).join(" ");
  svg.appendChild(el("path", { d: path, class: "line" }));
  if (opts.second && opts.second.length) {
    const max2 = Math.max(...opts.second.map((p) => p.y), 1);
    const p2 = opts.second.map((p, i) => (i ? "L" : "M") + sx(p.x).toFixed(1) + " " + sy(p.y, max2).toFixed(1)).join(" ");
    svg.appendChild(el("path", { d: p2, class: "line2" }));
    svg.appendChild(el("text", { x: W - R, y: T + 8, "text-anchor": "end" }, (opts.secondLabel || "") + " max " + opts.format2(max2)));
  }
  for (const m of opts.markers || []) {
    if (m.x < x0 || m.x > x1) continue;
    const x = sx(m.x);
    const d = m.kind === "mint"
      ? `M${x - 5} ${H - B + 10} L${x + 5} ${H - B + 10} L${x} ${H - B + 2} Z`
      : `M${x - 5} ${H - B + 2} L${x + 5} ${H - B + 2} L${x} ${H - B + 10} Z`;
    svg.appendChild(el("path", { d, class: m.kind }));
  }
  const fmt = opts.format || count;
  svg.appendChild(el("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, fmt(yMax)));
  svg.appendChild(el("text", { x: L - 4, y: H - B, "text-anchor": "end" }, fmt(0)));
  svg.appendChild(el("text", { x: L, y: H - 4 }, new Date(x0).toLocaleTimeString()));
  svg.appendChild(el("text", { x: W - R, y: H - 4, "text-anchor": "end" }, new Date(x1).toLocaleTimeString()));
}

// Grouped bars: categories [{label, a, b}], a and b each on their own scale.
function barChart(svg, categories, labels, formats) {
  clear(svg);
  svg.appendChild(el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  if (categories.length === 0) {
    svg.appendChild(el("text", { x: L + 8, y: H / 2 }, "nothing yet"));
    return;
  }
  const maxA = Math.max(...categories.map((c) => c.a), 1);
  const maxB = Math.max(...categories.map((c) => c.b), 1);
  const slot = (W - L - R) / categories.length;
  const bw = Math.min(28, slot / 3);
  categories.forEach((c, i) => {
    const x = L + i * slot + slot / 2;
    const ha = (c.a / maxA) * (H - T - B);
    const hb = (c.b / maxB) * (H - T - B);
    svg.appendChild(el("rect", { x: x - bw - 1, y: H - B - ha, width: bw, height: ha, class: "bar" }));
    svg.appendChild(el("rect", { x: x + 1, y: H - B - hb, width: bw, height: hb, class: "bar2" }));
    svg.appendChild(el("text", { x, y: H - B + 14, "text-anchor": "middle" }, c.label));
  });
  svg.appendChild(el("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, formats[0](maxA)));
  svg.appendChild(el("text", { x: W - R, y: T + 8, "text-anchor": "end" }, labels[0] + " (blue), " + labels[1] + " (orange, max " + formats[1](maxB) + ")"));
}

function render(doc) {
  const s = doc.supply;
  const supply = $("supply-outstanding");
  supply.textContent = money(s.outstanding_minor);
  supply.dataset.minor = String(s.outstanding_minor);
  supply.dataset.height = String(doc.height);
  $("supply-minted").textContent = money(s.minted_minor);
  $("supply-burned").textContent = money(s.burned_minor);
  $("supply-cap").textContent = money(s.cap_minor);
  $("payments-count").textContent = count(doc.flows.payments);
  $("payments-value").textContent = money(doc.flows.payments_value_minor);
  $("waterfalls").textContent = count(doc.flows.waterfalls) + " (" + money(doc.flows.waterfall_value_minor) + ")";
  $("reverse-waterfalls").textContent = count(doc.flows.reverse_waterfalls) + " (" + money(doc.flows.reverse_waterfall_value_minor) + ")";
  const rejections = Object.entries(doc.rejections || {});
  $("rejections-total").textContent = count(rejections.reduce((a, [, n]) => a + n, 0));
  $("rejections-detail").textContent = rejections.length ? rejections.map(([c, n]) => c + " " + n).join(" · ") : "none";
  const lat = doc.node.finality_latency_ms;
  $("finality-p50").textContent = ms(lat.p50_ms);
  $("finality-p95").textContent = ms(lat.p95_ms);
  $("finality-p99").textContent = ms(lat.p99_ms);
  $("node-height").textContent = count(doc.node.height);
  $("status-line").textContent = "chain " + doc.chain_id + " · height " + count(doc.height) + " · epoch " + doc.epoch + " · updated " + new Date(doc.time_ms).toLocaleTimeString();

  const dash = (v, f) => (v === null || v === undefined ? "–" : f(v));
  fillTable("banks", doc.banks, (b) => ({
    className: "bank-row",
    data: { bankId: b.id, issuedMinor: b.issued_minor, holdingsMinor: b.holdings_minor, floatMinor: b.float_minor },
    cells: [b.id + " " + b.name, b.status, money(b.issued_minor), money(b.quota_minor), money(b.holdings_minor),
      money(b.float_minor), count(b.wallets), dash(b.last_signed_height, count), count(b.evidence)],
  }));
  fillTable("tiers", doc.tiers, (t) => ({
    className: "tier-row",
    data: { tier: t.tier },
    cells: ["tier " + t.tier, count(t.wallets), money(t.balance_minor), dash(t.holding_limit_minor, money)],
  }));
  fillTable("events", doc.events.slice(0, 20), (e) => ({
    className: "event-row",
    data: {},
    cells: [new Date(e.t_ms).toLocaleString(), e.kind, dash(e.bank, String), dash(e.amount_minor, money), dash(e.height, count)],
  }));

  const series = doc.series || [];
  lineChart($("chart-supply"), series.map((p) => ({ x: p.t_ms, y: p.outstanding_minor })), {
    format: money,
    markers: doc.events.map((e) => ({ x: e.t_ms, kind: e.kind })),
  });
  const deltas = [];
  const values = [];
  for (let i = 1; i < series.length; i++) {
    deltas.push({ x: series[i].t_ms, y: Math.max(0, series[i].payments - series[i - 1].payments) });
    values.push({ x: series[i].t_ms, y: Math.max(0, series[i].payments_value_minor - series[i - 1].payments_value_minor) });
  }
  lineChart($("chart-payments"), deltas, { format: count, second: values, secondLabel: "value", format2: money });
  barChart($("chart-banks"), doc.banks.filter((b) => b.id !== 0).map((b) => ({ label: "bank " + b.id, a: b.holdings_minor, b: b.float_minor })), ["customers", "float"], [money, money]);
  barChart($("chart-tiers"), doc.tiers.map((t) => ({ label: "tier " + t.tier, a: t.wallets, b: t.balance_minor })), ["wallets", "balance"], [count, money]);
}

async function refresh() {
  if (!token) return;
  try {
    const response = await fetch("/v1/dashboard", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      const problem = await response.json().catch(() => ({}));
      signOut(response.status === 403 ? "This account may not view the dashboard (regulators only)." : "Session expired: sign in again. " + (problem.detail || ""));
      return;
    }
    if (response.ok) {
      render(await response.json());
    }
  } catch (error) {
    $("status-line").textContent = "connection lost, retrying";
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function signOut(message) {
  token = null;
  if (timer) clearTimeout(timer);
  $("dashboard").hidden = true;
  $("login-form").hidden = false;
  $("login-error").textContent = message;
}

async function signIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const body = JSON.stringify({ username: $("username").value, password: $("password").value });
  try {
    const response = await fetch("/v1/auth/token", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("login-error").textContent = "Sign-in failed: " + (answer.detail || response.status);
      return;
    }
    token = answer.access_token;
    $("password").value = "";
    const probe = await fetch("/v1/dashboard", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (!probe.ok) {
      signOut(probe.status === 403 ? "This account may not view the dashboard (regulators only)." : "Sign-in failed: " + probe.status);
      return;
    }
    $("login-form").hidden = true;
    $("dashboard").hidden = false;
    render(await probe.json());
    timer = setTimeout(refresh, REFRESH_MS);
  } catch (error) {
    $("login-error").textContent = "Cannot reach the central bank API.";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
});
