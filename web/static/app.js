// powerhub dashboard: a live line graph of one series, fed by server-sent events, with history ranges.
// Times are drawn in the viewer's local time zone (d3.scaleTime is local by default).
"use strict";

const prefix = document.body.dataset.prefix || "";
const margin = { top: 16, right: 24, bottom: 28, left: 56 };
const width = 1200, height = 460;
const LIVE_RANGE_MS = 600000;
const MAX_LIVE_POINTS = 20000;

const state = { series: null, rangeMs: LIVE_RANGE_MS, data: [], source: null };

// With web.tokens set, open the page as /#token=...: the token is kept for this tab and sent with every request
// (as a query parameter on the event stream, which cannot send headers), and taken out of the address bar.
const tokenMatch = location.hash.match(/(?:^#|&)token=([^&]+)/);
if (tokenMatch) {
  sessionStorage.setItem("powerhub-token", decodeURIComponent(tokenMatch[1]));
  history.replaceState(null, "", location.pathname + location.search);
}
const token = sessionStorage.getItem("powerhub-token");

const svg = d3.select("#chart").append("svg").attr("viewBox", `0 0 ${width} ${height}`);
const x = d3.scaleTime().range([margin.left, width - margin.right]);
const y = d3.scaleLinear().range([height - margin.bottom, margin.top]);
const gridG = svg.append("g").attr("class", "grid");
const band = svg.append("path").attr("class", "band");
const path = svg.append("path").attr("class", "line");
const xAxisG = svg.append("g").attr("class", "axis").attr("transform", `translate(0,${height - margin.bottom})`);
const yAxisG = svg.append("g").attr("class", "axis").attr("transform", `translate(${margin.left},0)`);
const focus = svg.append("g").attr("class", "focus").style("display", "none");
focus.append("line").attr("y1", margin.top).attr("y2", height - margin.bottom);
focus.append("circle").attr("r", 4);
const tooltip = d3.select("#tooltip");
const fmtTime = d3.timeFormat("%Y-%m-%d %H:%M:%S");
const fmtW = d3.format(",.1f");

// 24-hour local times on the axis, dates where the day changes (d3's default uses 12-hour clocks).
function tickFormat(date) {
  const fmt = d3.timeDay(date) < date ? (d3.timeMinute(date) < date ? "%H:%M:%S" : "%H:%M")
    : (d3.timeMonth(date) < date ? "%a %d" : "%b %d");
  return d3.timeFormat(fmt)(date);
}

function setStatus(text) { d3.select("#status").text(text); }

function render() {
  const now = Date.now();
  const data = state.data;
  x.domain([new Date(now - state.rangeMs), new Date(now)]);
  const lo = d3.min(data, (d) => d.min ?? d.w) ?? 0;
  const hi = d3.max(data, (d) => d.max ?? d.w) ?? 100;
  y.domain([Math.min(0, lo), hi * 1.05 || 1]).nice();
  xAxisG.call(d3.axisBottom(x).ticks(width / 110).tickFormat(tickFormat));
  yAxisG.call(d3.axisLeft(y).ticks(8).tickFormat((v) => `${d3.format("~s")(v)}W`));
  gridG.call(d3.axisLeft(y).ticks(8).tickSize(-(width - margin.left - margin.right)).tickFormat(""))
    .attr("transform", `translate(${margin.left},0)`);
  const line = d3.line().x((d) => x(d.ts)).y((d) => y(d.w)).curve(d3.curveStepBefore);
  path.datum(data).attr("d", line);
  // The min/max band exists only for history buckets; live points appended after them have no min/max.
  const bucketed = data.filter((d) => d.min !== undefined && d.max !== undefined);
  band.datum(bucketed).attr("d", d3.area().x((d) => x(d.ts)).y0((d) => y(d.min)).y1((d) => y(d.max))
    .curve(d3.curveStepBefore));
}

function showNow(point) {
  d3.select("#now-w").text(fmtW(point.w));
  d3.select("#now-at").text(`at ${fmtTime(new Date(point.ts))}`);
}

async function getJSON(url) {
  const resp = await fetch(prefix + url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  return resp.json();
}

async function loadRange() {
  const to = Date.now();
  const from = to - state.rangeMs;
  const id = encodeURIComponent(state.series);
  if (state.rangeMs <= LIVE_RANGE_MS) {
    const rows = await getJSON(`/api/v1/series/${id}/points?from=${from}&to=${to + 60000}`);
    state.data = rows.map(([ts, w]) => ({ ts, w }));
  } else {
    const buckets = await getJSON(`/api/v1/series/${id}/history?from=${from}&to=${to}&points=${width}`);
    state.data = buckets.map((b) => ({ ts: b.ts, w: b.mean_w, min: b.min_w, max: b.max_w, count: b.count }));
  }
  if (state.data.length) showNow(state.data[state.data.length - 1]);
  render();
}

function subscribe() {
  if (state.source) state.source.close();
  const auth = token ? `&token=${encodeURIComponent(token)}` : "";
  const source = new EventSource(`${prefix}/api/v1/stream?series=${encodeURIComponent(state.series)}${auth}`);
  source.addEventListener("point", (ev) => {
    const p = JSON.parse(ev.data);
    const w = p.w ?? p.value;
    state.data.push({ ts: p.ts, w });
    if (state.data.length > MAX_LIVE_POINTS) state.data.splice(0, state.data.length - MAX_LIVE_POINTS);
    showNow({ ts: p.ts, w });
    setStatus(`live: ${state.data.length} points on screen`);
    render();
  });
  source.onerror = () => setStatus("live stream interrupted; reconnecting…");
  state.source = source;
}

svg.on("mousemove", (ev) => {
  const data = state.data;
  if (!data.length) return;
  const [mx] = d3.pointer(ev);
  const t = x.invert(mx).getTime();
  const i = Math.min(data.length - 1, d3.bisector((d) => d.ts).center(data, t));
  const d = data[i];
  focus.style("display", null).attr("transform", `translate(${x(d.ts)},0)`);
  focus.select("circle").attr("cy", y(d.w));
  const extra = d.min !== undefined ? `<br>min ${fmtW(d.min)} W · max ${fmtW(d.max)} W` : "";
  tooltip.attr("hidden", null).html(`${fmtTime(new Date(d.ts))}<br><b>${fmtW(d.w)} W</b>${extra}`)
    .style("left", `${ev.pageX + 12}px`).style("top", `${ev.pageY - 28}px`);
});
svg.on("mouseleave", () => { focus.style("display", "none"); tooltip.attr("hidden", ""); });

d3.selectAll("#ranges button").on("click", function () {
  d3.selectAll("#ranges button").classed("active", false);
  d3.select(this).classed("active", true);
  state.rangeMs = +this.dataset.range;
  loadRange().catch((e) => setStatus(String(e)));
});

d3.select("#series").on("change", function () {
  state.series = this.value;
  loadRange().then(subscribe).catch((e) => setStatus(String(e)));
});

async function start() {
  const series = (await getJSON("/api/v1/series")).filter((s) => s.unit === "W");
  if (!series.length) {
    setStatus("no series yet: waiting for the first point…");
    setTimeout(() => start().catch((e) => setStatus(String(e))), 2000);
    return;
  }
  const wanted = document.body.dataset.defaultSeries;
  state.series = (series.find((s) => s.id === wanted) || series[0]).id;
  d3.select("#series").selectAll("option").data(series).join("option")
    .attr("value", (s) => s.id).property("selected", (s) => s.id === state.series).text((s) => s.id);
  await loadRange();
  subscribe();
  setInterval(render, 1000);  // keep the time axis moving between points
}

start().catch((e) => setStatus(String(e)));
