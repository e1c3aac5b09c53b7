// finsent dashboard: one small script for every page. It reads the JSON API under /api/,
// draws charts with plotly.js (served from the plotly Python package), and receives new
// alerts by server-sent events. Text from the database is only ever set as textContent.
"use strict";

const body = document.body;
const PAGE = body.dataset.page;
const KIND = body.dataset.kind || "all";
const SCOPE = body.dataset.scope || "all";
const COLORS = { negative: "#c0392b", neutral: "#a6acaf", positive: "#27ae60", score: "#1f4e79", alert: "#f39c12" };
const WATCH_KEY = "finsent.watchlist";

// ------------------------------------------------------------------ helpers
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function fmtTime(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : "–"; }
function fmtNum(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }
function fmtSigned(v, digits) { return v === null || v === undefined ? "–" : (v >= 0 ? "+" : "") + Number(v).toFixed(digits); }
function fmtPct(v) { return v === null || v === undefined ? "–" : Math.round(v * 100) + "%"; }
function fmtInt(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"); }
function scoreClass(v) { return v === null || v === undefined ? "" : v <= -0.2 ? "neg" : v >= 0.2 ? "pos" : "neu"; }
function safeHref(url) {
  try { const u = new URL(url, location.href); return (u.protocol === "http:" || u.protocol === "https:") ? u.href : null; }
  catch (e) { return null; }
}
function scopeHref(kind, scope, extra) {
  const base = kind === "ticker" ? "/ticker/" + encodeURIComponent(scope) : kind === "topic" ? "/topic/" + encodeURIComponent(scope) : "/";
  return extra ? base + "?" + extra : base;
}
async function api(path, params) {
  const qs = params ? "?" + new URLSearchParams(params).toString() : "";
  const r = await fetch("/api/" + path + qs, { headers: { Accept: "application/json" } });
  const data = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
function showError(where, err) {
  const host = document.getElementById(where) || document.querySelector("main");
  const p = el("p", { class: "note error", text: "Could not load: " + err.message });
  host.after ? host.after(p) : host.append(p);
}

// ------------------------------------------------------------------ the range (kept in the URL)
function currentRange() {
  const u = new URLSearchParams(location.search);
  if (u.get("since")) {
    const r = { since: u.get("since") };
    if (u.get("until")) r.until = u.get("until");
    return r;
  }
  const r = { range: u.get("range") || "1d" };
  if (u.get("until")) r.until = u.get("until");  // a preset range ending at a given time
  return r;
}
function setupRange(onChange) {
  const r = currentRange();
  for (const b of document.querySelectorAll("#range [data-range]")) {
    if (r.range === b.dataset.range) b.classList.add("active");
    b.addEventListener("click", () => navigateRange({ range: b.dataset.range }));
  }
  const si = document.getElementById("since-input"), ui = document.getElementById("until-input");
  if (r.since && si) si.value = r.since.replace("Z", "").slice(0, 16);
  if (r.until && ui) ui.value = r.until.replace("Z", "").slice(0, 16);
  const form = document.getElementById("custom-range");
  if (form) form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!si.value) return;
    const nr = { since: si.value + "Z" };
    if (ui.value) nr.until = ui.value + "Z";
    navigateRange(nr);
  });
  return r;
}
function navigateRange(r) {
  const u = new URLSearchParams(location.search);
  for (const k of ["range", "since", "until"]) u.delete(k);
  for (const [k, v] of Object.entries(r)) u.set(k, v);
  location.search = u.toString();
}
function showRangeText(since, until) {
  const t = document.getElementById("range-text");
  if (t) t.textContent = fmtTime(since) + " – " + fmtTime(until) + " UTC";
}
async function noteWhenEmpty(totals, since, until) {
  const p = document.getElementById("no-data");
  if (!p || (totals && totals.articles > 0)) return;
  const meta = await api("meta");
  p.hidden = false;
  p.textContent = "No articles in " + fmtTime(since) + " – " + fmtTime(until) + " UTC. ";
  if (meta.last) {
    p.append("The data of this schema ends at " + fmtTime(meta.last) + " UTC: ");
    const dayUntil = meta.last;
    const daySince = new Date(new Date(meta.last).getTime() - 86400000).toISOString().replace(".000Z", "Z");
    const u = new URLSearchParams(location.search);
    for (const k of ["range", "since", "until"]) u.delete(k);
    u.set("since", daySince); u.set("until", dayUntil);
    p.append(el("a", { href: "?" + u.toString(), id: "latest-data-link", text: "show its last 24 hours" }));
  } else {
    p.append("This schema has no data yet.");
  }
}

// ------------------------------------------------------------------ charts
function withGaps(points, widthMs) {
  // one point per bucket centre; a null between buckets further apart than one width breaks the lines
  const out = [];
  let prev = null;
  for (const p of points) {
    const t = new Date(p.bucket).getTime();
    if (prev !== null && t - prev > widthMs * 1.01) out.push({ x: new Date(prev + widthMs * 1.5).toISOString(), p: null });
    out.push({ x: new Date(t + widthMs / 2).toISOString(), p });
    prev = t;
  }
  return out;
}
function trendChart(div, t, opts) {
  opts = opts || {};
  const widthMs = t.bucket_seconds * 1000;
  const g = withGaps(t.points, widthMs);
  const xs = g.map((d) => d.x);
  const val = (k) => g.map((d) => (d.p ? d.p[k] : null));
  const bars = t.points.map((p) => new Date(new Date(p.bucket).getTime() + widthMs / 2).toISOString());
  const traces = [
    { x: xs, y: val("mean_score"), name: "mean score", type: "scatter", mode: t.points.length > 80 ? "lines" : "lines+markers",
      line: { color: COLORS.score, width: 2 }, marker: { size: 4 }, yaxis: "y", connectgaps: false,
      hovertemplate: "%{y:+.2f}" },
    { x: xs, y: val("negative_share"), name: "negative share", type: "scatter", mode: t.points.length > 80 ? "lines" : "lines+markers",
      line: { color: COLORS.negative, width: 2 }, marker: { size: 4 }, yaxis: "y2", connectgaps: false,
      hovertemplate: "%{y:.0%}" },
  ];
  for (const s of ["negative", "neutral", "positive"]) {
    traces.push({ x: bars, y: t.points.map((p) => p[s]), name: s, type: "bar", yaxis: "y3",
                  marker: { color: COLORS[s] }, width: widthMs * 0.9, hovertemplate: "%{y}" });
  }
  const shapes = [], annotations = [];
  for (const a of t.alerts || []) {
    const hl = opts.highlight && Number(opts.highlight) === a.id;
    shapes.push({ type: "rect", xref: "x", yref: "paper", x0: a.window_start, x1: a.window_end, y0: 0, y1: 1,
                  fillcolor: COLORS.alert, opacity: hl ? 0.45 : 0.25, line: { width: 0 }, layer: "below" });
    annotations.push({ x: a.window_start, y: 1, xref: "x", yref: "paper", xanchor: "left", yanchor: "bottom",
                       text: "alert z=" + fmtNum(a.z, 1), showarrow: false, font: { size: 10, color: "#a04000" } });
  }
  const layout = {
    margin: { l: 60, r: 20, t: 24, b: 36 }, barmode: "stack", bargap: 0, hovermode: "x unified",
    showlegend: true, legend: { orientation: "h", y: 1.08, x: 0 },
    xaxis: { type: "date", range: [t.since, t.until], anchor: "y3", showspikes: true, spikemode: "across" },
    yaxis: { domain: [0.6, 1], range: [-1.05, 1.05], title: { text: "mean score" }, zeroline: true },
    yaxis2: { domain: [0.32, 0.55], range: [-0.02, 1.02], tickformat: ".0%", title: { text: "negative" } },
    yaxis3: { domain: [0, 0.27], title: { text: "articles" }, rangemode: "tozero" },
    shapes, annotations, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  };
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  return Plotly.react(div, traces, layout, config).then(() => {
    div.dataset.rendered = "1";
    div.dataset.points = String(t.points.length);
    div.dataset.alerts = String((t.alerts || []).length);
  });
}
function topicsChart(div, scopes) {
  const names = scopes.map((s) => s.scope).reverse();
  const traces = ["negative", "neutral", "positive"].map((k) => ({
    y: names, x: scopes.map((s) => s[k]).reverse(), name: k, type: "bar", orientation: "h", marker: { color: COLORS[k] },
  }));
  const layout = { barmode: "stack", margin: { l: 190, r: 20, t: 10, b: 30 }, legend: { orientation: "h", y: -0.12 },
                   height: Math.max(260, 22 * names.length + 60) };
  div.style.height = layout.height + "px";
  return Plotly.react(div, traces, layout, { responsive: true, displaylogo: false })
    .then(() => { div.dataset.rendered = "1"; });
}

// ------------------------------------------------------------------ tables
function tickerLinks(a) {
  // the tickers of an article; with entity linking (articles.ticker_links) the matched text is shown too
  const td = el("td");
  const links = Array.isArray(a.ticker_links) ? a.ticker_links : [];
  const seen = new Set();
  for (const l of links) {
    if (!l || typeof l !== "object") continue;
    const tk = l.ticker || l.symbol;
    if (!tk) continue;
    seen.add(tk);
    const span = l.text || l.match || l.span || l.alias;
    const how = (l.rule ? "linked by " + l.rule : "linked") + (l.watch === false ? "; outside the watchlist (no trend)" : "");
    td.append(el("a", { href: scopeHref("ticker", tk), class: "tk" + (l.watch === false ? " unwatched" : ""), title: how, text: tk }),
              span && span !== tk ? el("span", { class: "muted", text: " (" + span + ")" }) : "", " ");
  }
  for (const tk of a.tickers || []) {
    if (seen.has(tk)) continue;
    td.append(el("a", { href: scopeHref("ticker", tk), class: "tk", text: tk }), " ");
  }
  return td;
}
function highlightSpans(title, a) {
  // the headline, with the spans that entity linking matched (when ticker_links carries offsets) marked
  const links = (Array.isArray(a.ticker_links) ? a.ticker_links : [])
    .filter((l) => l && Number.isInteger(l.start) && Number.isInteger(l.end) && l.start >= 0 && l.end <= title.length && l.start < l.end)
    .sort((x, y) => x.start - y.start);
  const frag = document.createDocumentFragment();
  let pos = 0;
  for (const l of links) {
    if (l.start < pos) continue;
    frag.append(title.slice(pos, l.start), el("mark", { title: l.ticker || "", text: title.slice(l.start, l.end) }));
    pos = l.end;
  }
  frag.append(title.slice(pos));
  return frag;
}
function scoreCell(a, ticker) {
  // the score: on a ticker's page (and a ticker alert's), the sentiment toward that ticker, with the
  // headline's beside it where the two differ (per-company sentiment: articles.ticker_sentiment)
  const own = ticker && a.ticker_sentiment_score !== undefined && a.ticker_sentiment_score !== null;
  if (!own) return el("td", { class: "n score " + scoreClass(a.sentiment_score), text: fmtSigned(a.sentiment_score, 2), title: a.sentiment });
  const td = el("td", { class: "n score toward " + scoreClass(a.ticker_sentiment_score), "data-sentiment": a.ticker_sentiment,
                        title: "sentiment toward " + ticker + ": " + a.ticker_sentiment + " (" + a.ticker_sentiment_source + "); the headline's: " + a.sentiment },
                el("span", { class: "own", text: fmtSigned(a.ticker_sentiment_score, 2) }));
  if (a.ticker_sentiment !== a.sentiment) {
    td.append(el("div", { class: "muted headline-score " + scoreClass(a.sentiment_score), "data-sentiment": a.sentiment,
                          text: "headline " + fmtSigned(a.sentiment_score, 2) }));
  }
  return td;
}
function articleRow(a, ticker) {
  const href = safeHref(a.url);
  const title = el("td", { class: "headline" });
  const text = highlightSpans(a.title, a);
  title.append(href ? el("a", { href, target: "_blank", rel: "noopener noreferrer" }, text) : text);
  return el("tr", { "data-id": a.id },
    el("td", { text: fmtTime(a.published_at) }),
    scoreCell(a, ticker),
    el("td", {}, a.topic ? el("a", { href: scopeHref("topic", a.topic), text: a.topic }) : "–"),
    title,
    el("td", { text: a.source || "–" }),
    tickerLinks(a));
}
function fillArticles(tbodySel, rows, emptySel, ticker) {
  const tb = document.querySelector(tbodySel + " tbody");
  tb.replaceChildren(...rows.map((a) => articleRow(a, ticker)));
  const empty = emptySel && document.getElementById(emptySel);
  if (empty) empty.hidden = rows.length > 0;
}
function alertItem(a, isNew) {
  const around = "since=" + encodeURIComponent(new Date(new Date(a.window_start).getTime() - 6 * 3600e3).toISOString().replace(".000Z", "Z"))
    + "&until=" + encodeURIComponent(new Date(new Date(a.window_end).getTime() + 2 * 3600e3).toISOString().replace(".000Z", "Z"))
    + "&alert=" + a.id;
  const li = el("li", { class: isNew ? "new" : "", "data-alert-id": a.id },
    el("div", { class: "what" },
      el("a", { href: scopeHref(a.scope_kind, a.scope, around), class: "scope-link", text: a.scope }),
      " " + a.scope_kind + ": " + a.negative + " negative of " + a.articles + " (" + fmtPct(a.negative_share) + "), z=" + fmtNum(a.z, 1)),
    el("div", { class: "meta" },
      fmtTime(a.window_start) + "–" + fmtTime(a.window_end).slice(11) + " UTC · " + a.delivery_status + (a.replayed ? " · replayed" : "") + " · ",
      el("a", { href: "/alert/" + a.id, class: "detail-link", text: "details" })));
  return li;
}
function fillAlerts(rows) {
  const ol = document.getElementById("alerts");
  ol.replaceChildren(...rows.map((a) => alertItem(a, false)));
  document.getElementById("alerts-empty").hidden = rows.length > 0;
}

// ------------------------------------------------------------------ live alerts
function liveFailed(e) {
  const live = document.getElementById("live");
  live.textContent = "live: off (" + e.message + ")";
  live.className = "live off";
}
async function liveAlerts(params) {
  // new alerts only: those stored after the newest one when the page opened
  const live = document.getElementById("live");
  const meta = await api("meta");
  const qs = new URLSearchParams({ ...(params || {}), after: meta.last_alert_id });
  const src = new EventSource("/api/alerts/stream" + (qs.toString() ? "?" + qs : ""));
  src.addEventListener("ready", () => { live.textContent = "live"; live.className = "live on"; body.dataset.live = "ready"; });
  src.addEventListener("alert", (ev) => {
    const a = JSON.parse(ev.data);
    const ol = document.getElementById("alerts");
    if (!ol || ol.querySelector('[data-alert-id="' + a.id + '"]')) return;
    ol.prepend(alertItem(a, true));
    document.getElementById("alerts-empty").hidden = true;
    body.dataset.liveAlerts = String(Number(body.dataset.liveAlerts || 0) + 1);
  });
  src.onerror = () => { live.textContent = "live: reconnecting"; live.className = "live off"; };
  // a page left for another one may be kept (back/forward cache) with its stream open, and a browser
  // holds only 6 connections per server: close the stream when the page is left, reload if it comes back
  window.addEventListener("pagehide", () => src.close());
  window.addEventListener("pageshow", (ev) => { if (ev.persisted) location.reload(); });
}

// ------------------------------------------------------------------ watchlist
function watchlist() { try { return JSON.parse(localStorage.getItem(WATCH_KEY) || "[]").filter((x) => typeof x === "string"); } catch (e) { return []; } }
function saveWatchlist(list) { localStorage.setItem(WATCH_KEY, JSON.stringify([...new Set(list)].slice(0, 30))); }
async function fillWatchlist(r) {
  const list = watchlist();
  document.getElementById("watchlist-empty").hidden = list.length > 0;
  const tb = document.querySelector("#watchlist tbody");
  tb.replaceChildren();
  for (const tk of list) {
    const row = el("tr", { "data-ticker": tk }, el("td", {}, el("a", { href: scopeHref("ticker", tk), text: tk })));
    tb.append(row);
    try {
      const t = await api("trends", { kind: "ticker", scope: tk, ...r });
      row.append(el("td", { class: "n", text: fmtInt(t.totals.articles) }),
                 el("td", { class: "n", text: fmtPct(t.totals.negative_share) }),
                 el("td", { class: "n score " + scoreClass(t.totals.mean_score), text: fmtSigned(t.totals.mean_score, 2) }));
    } catch (e) {
      row.append(el("td", { colspan: 3, class: "muted", text: e.message }));
    }
    const rm = el("button", { type: "button", title: "unpin", text: "✕" });
    rm.addEventListener("click", () => { saveWatchlist(watchlist().filter((x) => x !== tk)); fillWatchlist(r); });
    row.append(el("td", {}, rm));
  }
}
function setupPin() {
  const b = document.getElementById("pin");
  if (!b) return;
  const paint = () => { const on = watchlist().includes(SCOPE); b.textContent = on ? "★ pinned" : "☆ pin"; b.classList.toggle("pinned", on); };
  b.addEventListener("click", () => {
    const l = watchlist();
    saveWatchlist(l.includes(SCOPE) ? l.filter((x) => x !== SCOPE) : [...l, SCOPE]);
    paint();
  });
  paint();
}

// ------------------------------------------------------------------ search
function setupSearch() {
  const input = document.getElementById("search-input"), list = document.getElementById("search-list");
  let topics = [];
  api("scopes", { kind: "topic", range: "30d", limit: 50 }).then((d) => { topics = d.scopes.map((s) => s.scope); }).catch(() => {});
  input.addEventListener("input", async () => {
    const v = input.value.trim();
    if (!v) return;
    const opts = topics.filter((t) => t.toLowerCase().startsWith(v.toLowerCase())).map((t) => el("option", { value: t }));
    try {
      const d = await api("scopes", { kind: "ticker", prefix: v.replace(/^\$/, ""), limit: 10 });
      for (const s of d.scopes) opts.push(el("option", { value: s.scope }));
    } catch (e) { /* a symbol with odd characters: the submit says why */ }
    list.replaceChildren(...opts);
  });
  document.getElementById("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = input.value.trim();
    if (!v) return;
    const topic = topics.find((t) => t.toLowerCase() === v.toLowerCase());
    location.href = topic ? scopeHref("topic", topic) : scopeHref("ticker", v.replace(/^\$/, "").toUpperCase());
  });
}

// ------------------------------------------------------------------ feed health (overview)
function fillFeeds(d) {
  const tb = document.querySelector("#feeds tbody");
  tb.replaceChildren(...d.feeds.map((f) => {
    const state = f.state === "ok" && f.overdue ? "ok (overdue)" : f.state;
    const err = f.last_error ? fmtTime(f.last_error_at) + " " + f.last_error : "–";
    return el("tr", { class: "feed-" + f.state, "data-feed": f.name, title: f.url },
      el("td", { text: f.name }), el("td", { text: f.kind }), el("td", { class: "state", text: state }),
      el("td", { class: "n", text: fmtInt(f.items_24h) }), el("td", { text: fmtTime(f.last_success_at) }),
      el("td", { class: "n", text: fmtInt(f.consecutive_failures) }), el("td", { class: "err", text: err }));
  }));
  document.getElementById("feeds-empty").hidden = d.feeds.length > 0;
}

// ------------------------------------------------------------------ pages
function markLoaded() {
  // charts drawn and tables filled: the benchmark (bench/dashboard_load.py) and the browser test wait for this
  performance.mark("finsent-loaded");
  body.dataset.loaded = "1";
}
async function overviewPage() {
  const r = setupRange();
  liveAlerts().catch(liveFailed);
  const market = api("trends", { kind: "all", scope: "all", ...r }).then(async (t) => {
    showRangeText(t.since, t.until);
    const tot = t.totals;
    document.getElementById("market-totals").textContent = tot.articles
      ? fmtInt(tot.articles) + " articles · " + fmtPct(tot.negative_share) + " negative · mean score " + fmtSigned(tot.mean_score, 2) : "";
    await trendChart(document.getElementById("chart-market"), t);
    await noteWhenEmpty(tot, t.since, t.until);
  }).catch((e) => showError("chart-market", e));
  const topics = api("scopes", { kind: "topic", limit: 20, ...r }).then((d) => {
    const tb = document.querySelector("#topics tbody");
    tb.replaceChildren(...d.scopes.map((s) => el("tr", {},
      el("td", {}, el("a", { href: scopeHref("topic", s.scope, new URLSearchParams(r).toString()), text: s.scope })),
      el("td", { class: "n", text: fmtInt(s.articles) }), el("td", { class: "n neg", text: fmtInt(s.negative) }),
      el("td", { class: "n", text: fmtInt(s.neutral) }), el("td", { class: "n pos", text: fmtInt(s.positive) }),
      el("td", { class: "n", text: fmtPct(s.negative_share) }),
      el("td", { class: "n score " + scoreClass(s.mean_score), text: fmtSigned(s.mean_score, 2) }))));
    return topicsChart(document.getElementById("chart-topics"), d.scopes);
  }).catch((e) => showError("topics", e));
  const movers = api("movers", { limit: 10, ...r }).then((d) => {
    const tb = document.querySelector("#movers tbody");
    tb.replaceChildren(...d.movers.map((m) => el("tr", {},
      el("td", {}, el("a", { href: scopeHref("ticker", m.ticker, new URLSearchParams(r).toString()), text: m.ticker })),
      el("td", { class: "n", text: fmtInt(m.articles) }),
      el("td", { class: "n score " + scoreClass(m.mean_score), text: fmtSigned(m.mean_score, 2) }),
      el("td", { class: "n", text: fmtSigned(m.baseline_mean_score, 2) }),
      el("td", { class: "n score " + scoreClass(m.change), text: fmtSigned(m.change, 2) }),
      el("td", { class: "n", text: fmtPct(m.negative_share) }))));
  }).catch((e) => showError("movers", e));
  const alerts = api("alerts", { limit: 30, ...r }).then((d) => fillAlerts(d.alerts)).catch((e) => showError("alerts", e));
  const wl = fillWatchlist(r);
  const feeds = api("feeds").then(fillFeeds).catch((e) => showError("feeds", e));
  await Promise.all([market, topics, movers, alerts, wl, feeds]);
  markLoaded();
}

async function scopePage() {
  const r = setupRange();
  const highlight = new URLSearchParams(location.search).get("alert");
  setupPin();
  liveAlerts({ kind: KIND, scope: SCOPE }).catch(liveFailed);
  let order = "newest";
  const loadHeadlines = () => api("articles", { kind: KIND, scope: SCOPE, limit: 100, order, ...r })
    .then((d) => fillArticles("#headlines", d.articles, "headlines-empty", KIND === "ticker" ? SCOPE : null))
    .catch((e) => showError("headlines", e));
  for (const b of document.querySelectorAll(".filters [data-order]")) {
    b.addEventListener("click", () => {
      order = b.dataset.order;
      for (const o of document.querySelectorAll(".filters [data-order]")) o.classList.toggle("active", o === b);
      loadHeadlines();
    });
  }
  const chart = api("trends", { kind: KIND, scope: SCOPE, ...r }).then(async (t) => {
    showRangeText(t.since, t.until);
    const tot = t.totals;
    document.getElementById("scope-totals").textContent = tot.articles
      ? fmtInt(tot.articles) + " articles · " + fmtPct(tot.negative_share) + " negative · mean score " + fmtSigned(tot.mean_score, 2)
        + " · " + t.bucket + " buckets" : "";
    await trendChart(document.getElementById("chart-scope"), t, { highlight });
    await noteWhenEmpty(tot, t.since, t.until);
  }).catch((e) => showError("chart-scope", e));
  const alerts = api("alerts", { kind: KIND, scope: SCOPE, limit: 50, ...r }).then((d) => fillAlerts(d.alerts))
    .catch((e) => showError("alerts", e));
  await Promise.all([chart, loadHeadlines(), alerts]);
  markLoaded();
}

function fact(tb, name, value) {
  tb.append(el("tr", {}, el("th", { text: name }), value instanceof Node ? el("td", {}, value) : el("td", { text: value })));
}
async function alertPage() {
  liveAlerts().catch(liveFailed);
  const id = body.dataset.alertId;
  const d = await api("alerts/" + id);
  const a = d.alert;
  document.getElementById("alert-title").textContent = a.title;
  const around = "since=" + encodeURIComponent(new Date(new Date(a.window_start).getTime() - 6 * 3600e3).toISOString().replace(".000Z", "Z"))
    + "&until=" + encodeURIComponent(new Date(new Date(a.window_end).getTime() + 2 * 3600e3).toISOString().replace(".000Z", "Z")) + "&alert=" + a.id;
  const link = document.getElementById("scope-link");
  link.href = scopeHref(a.scope_kind, a.scope, around);
  link.textContent = "open " + a.scope_kind + " " + a.scope + " around this alert";
  const f = document.querySelector("#alert-facts tbody");
  fact(f, "rule", a.rule);
  fact(f, "scope", a.scope_kind + " " + a.scope);
  fact(f, "window (UTC)", fmtTime(a.window_start) + " – " + fmtTime(a.window_end));
  fact(f, "negative / articles", a.negative + " of " + a.articles + " (" + fmtPct(a.negative_share) + ")");
  fact(f, "z", fmtNum(a.z, 2));
  fact(f, "baseline", fmtNum(a.baseline, 2) + " ± " + fmtNum(a.baseline_std, 2) + " negatives per window, over " + a.baseline_windows + " windows");
  fact(f, "mean score in the window", fmtSigned(a.mean_score, 2));
  fact(f, "replayed", a.replayed ? "yes (found while replaying history)" : "no");
  fact(f, "stored", fmtTime(a.created_at) + " UTC (watermark " + fmtTime(a.watermark) + ")");
  for (const [k, v] of Object.entries(d.extra || {})) fact(f, k.replace(/_/g, " "), v === null ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const dv = document.querySelector("#delivery tbody");
  fact(dv, "status", el("span", { class: "status-" + d.delivery.status, text: d.delivery.status }));
  fact(dv, "attempts", String(d.delivery.attempts));
  if (d.delivery.delivered_at) fact(dv, "delivered", fmtTime(d.delivery.delivered_at) + " UTC");
  if (d.delivery.next_attempt_at) fact(dv, "next attempt", fmtTime(d.delivery.next_attempt_at) + " UTC");
  if (d.delivery.last_error) fact(dv, "last error", d.delivery.last_error);
  fact(dv, "targets that accepted it", String(d.delivery.delivered_targets));
  const tt = document.querySelector("#delivery-targets tbody");
  tt.replaceChildren(...d.delivery.targets.map((t) => el("tr", {}, el("td", { text: t.target }),
    el("td", { class: "status-" + t.status.split(",")[0].split(" ")[0], text: t.status }))));
  if (!d.delivery.targets.length) tt.append(el("tr", {}, el("td", { colspan: 2, class: "muted", text: "no apprise target configured for this dashboard" })));
  document.getElementById("alert-message").textContent = a.message;
  fillArticles("#top-articles", d.top_articles, null, a.scope_kind === "ticker" ? a.scope : null);
  const since = new Date(new Date(a.window_start).getTime() - 6 * 3600e3).toISOString();
  const until = new Date(new Date(a.window_end).getTime() + 2 * 3600e3).toISOString();
  const t = await api("trends", { kind: a.scope_kind, scope: a.scope, since, until });
  await trendChart(document.getElementById("chart-alert"), t, { highlight: a.id });
  markLoaded();
}

document.addEventListener("DOMContentLoaded", () => {
  setupSearch();
  const run = PAGE === "overview" ? overviewPage : PAGE === "scope" ? scopePage : PAGE === "alert" ? alertPage : null;
  if (run) run().catch((e) => { showError("main", e); body.dataset.loaded = "error"; });
});
