// powerhub dashboard: an overview of every series, and a detail chart of one series, a machine or a device,
// live through server-sent events, zoomable into the history at the resolution the chart's width needs.
"use strict";

const prefix = document.body.dataset.prefix || "";
const price = document.body.dataset.price === "" ? null : +document.body.dataset.price;
const currency = document.body.dataset.currency || "";
// Channel prefixes with a meaning, from the hub's vocabulary (telemetry/series.py) rather than spelt here.
const OUTLET = document.body.dataset.outletPrefix;
const FORMULA = document.body.dataset.formulaPrefix;
const ENERGY_DAY = document.body.dataset.energyDayPrefix;
const ALERT_HISTORY = document.body.dataset.alertHistory === "yes";  // web.hub_url set (or the demo's own hub)
const RAW_MAX_SPAN_MS = 2 * 3600000;  // up to two hours on screen: raw points; beyond: buckets
const MAX_LIVE_POINTS = 20000;
const COLORS = d3.schemeTableau10;

// With web.tokens set, open the page as /#token=...: the token is kept for this tab and sent with every request
// (as a query parameter on the event stream, which cannot send headers), and taken out of the address bar.
const tokenMatch = location.hash.match(/(?:^#|&)token=([^&]+)/);
if (tokenMatch) {
  sessionStorage.setItem("powerhub-token", decodeURIComponent(tokenMatch[1]));
  history.replaceState(null, "", location.pathname + location.search);
}
const token = sessionStorage.getItem("powerhub-token");

const state = { all: [], ids: [], title: "", spanMs: 600000, live: true, source: null, loadSeq: 0, range: [0, 0],
  alerts: [], resolved: [] };
const chart = new Chart("#chart", "#tooltip", (from, to) => zoomTo(from, to), () => goLive());

function setStatus(text) { d3.select("#status").text(text); }
function fail(e) { setStatus(String(e)); }

async function getJSON(url) {
  const resp = await fetch(prefix + url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  return resp.json();
}

function label(id) {
  return state.ids.length > 1 && state.ids.every((i) => i.split(".")[1] === id.split(".")[1])
    ? id.split(".")[2] : id;
}

// Load every shown series for [from, to]: raw points for short spans, buckets of one common step otherwise
// (so stacked series share timestamps).
async function load(from, to) {
  const seq = ++state.loadSeq;
  state.range = [from, to];  // what is asked for, even before it is on screen
  const raw = to - from <= RAW_MAX_SPAN_MS && !d3.select("#stack").property("checked");
  const step = Math.max(1, Math.ceil((to - from) / CHART.width));
  const results = await Promise.all(state.ids.map(async (id) => {
    const e = encodeURIComponent(id);
    if (raw) {
      const rows = await getJSON(`/api/v1/series/${e}/points?from=${from}&to=${to + 60000}`);
      return rows.map(([ts, w]) => ({ ts, w }));
    }
    const start = Math.floor(from / step) * step;
    const buckets = await getJSON(`/api/v1/series/${e}/history?from=${start}&to=${to}&step=${step}`);
    return buckets.map((b) => ({ ts: b.ts, w: b.mean_w, min: b.min_w, max: b.max_w, wh: b.wh }));
  }));
  if (seq !== state.loadSeq) return;  // a newer zoom superseded this one
  chart.series = state.ids.map((id, i) => ({ id, label: label(id), color: COLORS[i % COLORS.length],
    data: results[i] }));
  chart.domain = [from, to];
  chart.marks = marksFor(state.ids);
  chart.render();
  showEnergy();
  showLegend();
  setStatus(`${raw ? "raw points" : `buckets of ${d3.format(",")(step / 1000)} s`}; `
    + `${d3.sum(results, (r) => r.length)} on screen`);
}

function showEnergy() {
  const [from, to] = chart.domain;
  const wh = d3.sum(chart.series, (s) => energyWh(s.data, from, to));
  const cost = price === null ? "" : ` · ${d3.format(",.2f")(wh / 1000 * price)} ${currency}`;
  d3.select("#energy").text(`${d3.format(",.3f")(wh / 1000)} kWh${cost}`);
}

function showLegend() {
  d3.select("#legend").selectAll("span.entry").data(chart.series, (s) => s.id).join((enter) => {
    const entry = enter.append("span").attr("class", "entry");
    entry.each(function (s) { swatch(d3.select(this), s.color); });
    entry.append("span").text((s) => s.id);
    return entry;
  });
}

function showNow(ts, w) {
  d3.select("#now-w").text(fmtW(w));
  d3.select("#now-at").text(`at ${fmtTime(new Date(ts))}`);
}

function zoomTo(from, to) {
  state.live = to >= Date.now() - 1000;
  if (state.live) state.spanMs = to - from;
  load(from, to).catch(fail);
}

function goLive() {
  state.live = true;
  const to = Date.now();
  load(to - state.spanMs, to).catch(fail);
}

function subscribe() {
  if (state.source) state.source.close();
  const auth = token ? `&token=${encodeURIComponent(token)}` : "";
  const ids = state.ids.map(encodeURIComponent).join(",");
  const source = new EventSource(`${prefix}/api/v1/stream?series=${ids}${auth}`);
  source.addEventListener("point", (ev) => {
    const p = JSON.parse(ev.data);
    const w = p.w ?? p.value;
    const s = chart.series.find((c) => c.id === p.id);
    if (!s) return;
    const last = s.data[s.data.length - 1];
    if (!last || p.ts > last.ts) s.data.push({ ts: p.ts, w });
    if (s.data.length > MAX_LIVE_POINTS) s.data.splice(0, s.data.length - MAX_LIVE_POINTS);
    if (s === chart.series[0]) showNow(p.ts, w);
    if (state.live) {
      chart.domain = [Date.now() - state.spanMs, Date.now()];
      chart.render();
      showEnergy();
    }
  });
  source.onerror = () => setStatus("live stream interrupted; reconnecting…");
  state.source = source;
}

function show(ids, title) {
  state.ids = ids;
  state.title = title;
  state.resolved = [];
  loadResolved(ids).catch(fail);
  d3.select("#detail-title").text(title);
  const latest = state.all.find((s) => s.id === ids[0]);
  if (latest && latest.last) showNow(latest.last.ts, latest.last.w ?? latest.last.value);
  goLive();
  subscribe();
}

function siteTotals(series) {
  // A site's total: the series that are neither outlets nor a mapped machine's own source (those are inside
  // a PDU total or a meter already) nor a formula's result: meters and PDU totals.
  const bySite = d3.rollup(series.filter((s) => s.last && !s.channel.startsWith(OUTLET) && !s.machine
    && !s.channel.startsWith(FORMULA)),
    (v) => d3.sum(v, (s) => s.last.w ?? 0), (s) => s.site);
  const totals = d3.select("#totals").selectAll("span.total").data([...bySite], (d) => d[0]).join((enter) => {
    const t = enter.append("span").attr("class", "total");
    t.append("span").attr("class", "site");
    t.append("b");
    t.append("span").text(" W");
    return t;
  });
  totals.select(".site").text(([site]) => `${site} `);
  totals.select("b").text(([, w]) => d3.format(",.0f")(w));
}

async function refreshOverview() {
  const all = await getJSON("/api/v1/series");
  const series = all.filter((s) => s.unit === "W");
  state.all = series;
  // The energy formula's daily totals, beside the power series they come from.
  const daily = new Map(all.filter((s) => s.channel.startsWith(ENERGY_DAY) && s.last)
    .map((s) => [`${s.site}.${s.device}.${s.channel.slice(ENERGY_DAY.length)}`, s.last]));
  siteTotals(series);
  const rows = d3.select("#overview tbody").selectAll("tr").data(series, (s) => s.id).join((enter) => {
    const tr = enter.append("tr");
    tr.append("td").attr("class", "state");
    tr.append("td").attr("class", "id").append("a").attr("href", "#")
      .on("click", (ev, s) => { ev.preventDefault(); show([s.id], s.id); });
    tr.append("td").attr("class", "machine");
    tr.append("td").attr("class", "num now");
    tr.append("td").attr("class", "num day");
    tr.append("td").attr("class", "spark").append("svg");
    return tr;
  });
  rows.select("td.state").attr("class", (s) => `state ${s.online === true ? "online" : s.online === false
    ? "offline" : "unknown"}`).attr("title", (s) => (s.online === null ? "agent state unknown"
    : `agent ${s.agent} ${s.online ? "online" : "offline"}${s.gaps ? `, ${s.gaps} points missing` : ""}`));
  rows.select("td.id a").text((s) => s.id);
  rows.select("td.machine").each(function (s) {
    const cell = d3.select(this).text("");
    if (!s.machine) return;
    cell.append("a").attr("href", "#").text(s.machine).on("click", (ev) => {
      ev.preventDefault();
      const ids = state.all.filter((o) => o.machine === s.machine).map((o) => o.id);
      show(ids, `machine ${s.machine}`);
    });
  });
  rows.select("td.now").text((s) => (s.last ? fmtW(s.last.w ?? s.last.value) : "–"));
  rows.select("td.day").text((s) => (daily.has(s.id) ? `${d3.format(",.3f")(daily.get(s.id).value)} kWh` : ""))
    .attr("title", (s) => (daily.has(s.id) ? `since ${fmtTime(new Date(daily.get(s.id).ts))}` : null));
  const to = Date.now();
  await Promise.all(series.map(async (s) => {
    const e = encodeURIComponent(s.id);
    const buckets = await getJSON(`/api/v1/series/${e}/history?from=${to - 3600000}&to=${to}&points=60`);
    const node = rows.filter((r) => r.id === s.id).select("td.spark svg").node();
    if (node && buckets.length) sparkline(node, buckets.map((b) => ({ ts: b.ts, w: b.mean_w })));
  }));
  return series;
}

// An alert concerns the shown series when its subject is one of them, or the device they belong to (the
// redundancy check's PDU).
function concerns(alert, ids) {
  return ids.some((id) => id === alert.subject || id.startsWith(`${alert.site}.${alert.subject}.`));
}

function marksFor(ids) {
  const past = state.resolved.filter((h) => concerns(h, ids))
    .map((h) => ({ from: h.since, to: h.ts, severity: h.severity, summary: h.summary }));
  return past.concat(state.alerts.filter((a) => concerns(a, ids))
    .map((a) => ({ from: a.since, to: null, severity: a.severity, summary: a.summary })));
}

// Alerts of the shown series that have resolved (the hub's history): bands from where each fired to where it
// resolved. Asked per subject, the series and their devices (a PDU is the redundancy check's subject).
async function loadResolved(ids) {
  if (!ALERT_HISTORY) return;
  const subjects = [...new Set(ids.flatMap((id) => [id, id.split(".")[1]]))];
  const lists = await Promise.all(subjects.map((subject) => getJSON(
    `/api/v1/alerts/history?subject=${encodeURIComponent(subject)}&limit=200`).catch(() => [])));
  if (ids !== state.ids) return;  // another view was chosen meanwhile
  state.resolved = lists.flat().filter((h) => h.state === "resolved" && concerns(h, ids));
  chart.marks = marksFor(ids);
  chart.render();
}

// What fires now (GET /api/v1/alerts, from every hub's retained alert topics): a banner above the chart, each
// alert's subject a link to its chart when it is a series, and bands on the chart where it holds.
async function refreshAlerts() {
  const box = d3.select("#alerts");
  let alerts;
  try {
    alerts = await getJSON("/api/v1/alerts");
  } catch (e) {
    box.attr("hidden", null).attr("class", "unavailable");
    d3.select("#alerts-title").text("Alerts unavailable");
    box.select("ul").selectAll("li").data([String(e)]).join("li").text((t) => t);
    return;
  }
  const key = (a) => `${a.site}/${a.rule}/${a.subject}`;
  const ended = state.alerts.some((a) => concerns(a, state.ids) && !alerts.some((b) => key(b) === key(a)));
  state.alerts = alerts;
  if (ended) loadResolved(state.ids).catch(fail);  // an alert on screen resolved: its band stays, now closed
  box.attr("hidden", alerts.length ? null : "")
    .attr("class", alerts.some((a) => a.severity === "critical") ? "critical" : "warning");
  d3.select("#alerts-title").text(`${alerts.length} alert${alerts.length === 1 ? "" : "s"} firing`);
  const known = new Set(state.all.map((s) => s.id));
  box.select("ul").selectAll("li").data(alerts, key).join("li")
    .attr("class", (a) => a.severity)
    .each(function (a) {
      const li = d3.select(this).text("");
      li.append("span").attr("class", "severity").text(a.severity);
      if (known.has(a.subject)) {
        li.append("a").attr("href", "#").text(a.summary)
          .on("click", (ev) => { ev.preventDefault(); show([a.subject], a.subject); });
      } else {
        li.append("span").attr("class", "summary").text(a.summary);
      }
      li.append("span").attr("class", "since").text(`since ${fmtTime(new Date(a.since))}`);
    });
  chart.marks = marksFor(state.ids);
  chart.render();
}

d3.selectAll("#ranges button").on("click", function () {
  d3.selectAll("#ranges button").classed("active", false);
  d3.select(this).classed("active", true);
  state.spanMs = +this.dataset.range;
  goLive();
});

d3.select("#stack").on("change", function () {
  chart.stacked = this.checked;
  if (state.live) goLive();
  else load(...state.range).catch(fail);
});

async function start() {
  const series = await refreshOverview();
  await refreshAlerts();
  if (!series.length) {
    setStatus("no series yet: waiting for the first point…");
    setTimeout(() => start().catch(fail), 2000);
    return;
  }
  const wanted = document.body.dataset.defaultSeries;
  const first = (series.find((s) => s.id === wanted) || series[0]).id;
  show([first], first);
  setInterval(() => { if (state.live) { chart.domain = [Date.now() - state.spanMs, Date.now()]; chart.render(); } },
    1000);  // keep the time axis moving between points
  setInterval(() => refreshOverview().catch(fail), 15000);
  setInterval(() => refreshAlerts().catch(fail), 5000);
}

start().catch(fail);
