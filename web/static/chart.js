// powerhub's chart: one or more series as step lines (or stacked areas), a min/max band for history buckets,
// a brush to zoom in, the wheel to zoom in and out, and a tooltip with every series' value at the pointer.
// Times are drawn in the viewer's local time zone (d3.scaleTime is local by default).
"use strict";

const CHART = { width: 1200, height: 440, margin: { top: 16, right: 24, bottom: 28, left: 60 } };
const fmtTime = d3.timeFormat("%Y-%m-%d %H:%M:%S");
const fmtW = d3.format(",.1f");

// 24-hour local times on the axis, dates where the day changes (d3's default uses 12-hour clocks).
function tickFormat(date) {
  const fmt = d3.timeDay(date) < date ? (d3.timeMinute(date) < date ? "%H:%M:%S" : "%H:%M")
    : (d3.timeMonth(date) < date ? "%a %d" : "%b %d");
  return d3.timeFormat(fmt)(date);
}

class Chart {
  // onRange(fromMs, toMs) is called when the user zooms; onReset() on double-click.
  constructor(element, tooltip, onRange, onReset) {
    const { width, height, margin } = CHART;
    this.onRange = onRange;
    this.series = [];  // [{id, label, color, data: [{ts, w, min?, max?}]}]
    this.marks = [];  // alerts that held on what is shown: [{from, to (null: still firing), severity, summary}]
    this.stacked = false;
    this.domain = [Date.now() - 600000, Date.now()];
    this.svg = d3.select(element).append("svg").attr("viewBox", `0 0 ${width} ${height}`);
    this.x = d3.scaleTime().range([margin.left, width - margin.right]);
    this.y = d3.scaleLinear().range([height - margin.bottom, margin.top]);
    this.gridG = this.svg.append("g").attr("class", "grid");
    this.marksG = this.svg.append("g").attr("class", "marks");
    this.plot = this.svg.append("g").attr("class", "plot");
    this.xAxisG = this.svg.append("g").attr("class", "axis").attr("transform", `translate(0,${height - margin.bottom})`);
    this.yAxisG = this.svg.append("g").attr("class", "axis").attr("transform", `translate(${margin.left},0)`);
    this.focus = this.svg.append("g").attr("class", "focus").style("display", "none");
    this.focus.append("line").attr("y1", margin.top).attr("y2", height - margin.bottom);
    this.tooltip = d3.select(tooltip);
    this.brush = d3.brushX().extent([[margin.left, margin.top], [width - margin.right, height - margin.bottom]])
      .on("end", (ev) => this.brushed(ev));
    this.brushG = this.svg.append("g").attr("class", "brush").call(this.brush);
    this.brushG.on("dblclick", onReset);
    this.brushG.on("mousemove", (ev) => this.hover(ev)).on("mouseleave", () => this.unhover());
    this.brushG.on("wheel", (ev) => this.wheel(ev), { passive: false });
  }

  brushed(ev) {
    if (!ev.selection || !ev.sourceEvent) return;
    const [a, b] = ev.selection.map((px) => this.x.invert(px).getTime());
    this.brushG.call(this.brush.move, null);
    if (b - a >= 1000) this.onRange(Math.round(a), Math.round(b));
  }

  // The wheel zooms about the pointer; with Shift held (or a sideways wheel or swipe) it pans.
  wheel(ev) {
    ev.preventDefault();
    const [mx] = d3.pointer(ev, this.svg.node());
    const t = this.x.invert(mx).getTime();
    const [a, b] = this.domain;
    let from, to;
    if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
      const shift = Math.sign(ev.deltaX || ev.deltaY) * (b - a) * 0.1;
      [from, to] = [a + shift, b + shift];
    } else {
      const k = ev.deltaY < 0 ? 1 / 1.5 : 1.5;
      [from, to] = [t - (t - a) * k, t + (b - t) * k];
    }
    clearTimeout(this.wheelTimer);
    this.domain = [from, to];
    this.render();
    this.wheelTimer = setTimeout(() => this.onRange(Math.round(from), Math.round(to)), 200);
  }

  // Stacked: series share bucket timestamps (the app asks /history with one step for all), summed bottom up.
  layers() {
    if (!this.stacked || this.series.length < 2) {
      return this.series.map((s) => ({ s, pts: s.data.map((d) => ({ ts: d.ts, y0: null, y1: d.w, d })) }));
    }
    let base = new Map();
    return this.series.map((s) => {
      const next = new Map(base);
      const pts = s.data.map((d) => {
        const y0 = base.get(d.ts) ?? 0;
        next.set(d.ts, y0 + d.w);
        return { ts: d.ts, y0, y1: y0 + d.w, d };
      });
      base = next;
      return { s, pts };
    });
  }

  render() {
    const { width, margin } = CHART;
    const [a, b] = this.domain;
    this.x.domain([new Date(a), new Date(b)]);
    const layers = this.layers();
    const visible = layers.flatMap((l) => l.pts.filter((p) => p.ts >= a && p.ts <= b));
    const lo = d3.min(visible, (p) => p.d.min ?? p.y1) ?? 0;
    const hi = d3.max(visible, (p) => (this.stacked ? p.y1 : (p.d.max ?? p.y1))) ?? 100;
    this.y.domain([Math.min(0, lo), hi * 1.05 || 1]).nice();
    this.xAxisG.call(d3.axisBottom(this.x).ticks(width / 110).tickFormat(tickFormat));
    this.yAxisG.call(d3.axisLeft(this.y).ticks(8).tickFormat((v) => `${d3.format("~s")(v)}W`));
    this.gridG.call(d3.axisLeft(this.y).ticks(8).tickSize(-(width - margin.left - margin.right)).tickFormat(""))
      .attr("transform", `translate(${margin.left},0)`);
    this.renderMarks();
    const x = (p) => this.x(p.ts);
    const groups = this.plot.selectAll("g.series").data(layers, (l) => l.s.id)
      .join((enter) => {
        const g = enter.append("g").attr("class", "series");
        g.append("path").attr("class", "band");
        g.append("path").attr("class", "area");
        g.append("path").attr("class", "line");
        return g;
      });
    groups.style("--color", (l) => l.s.color);
    groups.select("path.line").attr("d", (l) => d3.line().x(x).y((p) => this.y(p.y1)).curve(d3.curveStepBefore)(l.pts));
    groups.select("path.area").attr("d", (l) => (this.stacked && this.series.length > 1
      ? d3.area().x(x).y0((p) => this.y(p.y0)).y1((p) => this.y(p.y1)).curve(d3.curveStepBefore)(l.pts) : null));
    // The min/max band exists only for history buckets (live points appended after them have none).
    groups.select("path.band").attr("d", (l) => (this.stacked ? null : d3.area().x(x)
      .y0((p) => this.y(p.d.min)).y1((p) => this.y(p.d.max)).curve(d3.curveStepBefore)(
        l.pts.filter((p) => p.d.min !== undefined && p.d.max !== undefined))));
  }

  // Where an alert held: a band behind the lines, from when it fired to its resolution (or the view's end).
  renderMarks() {
    const { height, margin } = CHART;
    const [a, b] = this.domain;
    const spans = this.marks.map((m) => ({ m, x0: this.x(Math.max(m.from, a)), x1: this.x(Math.min(m.to ?? b, b)) }))
      .filter((s) => s.x1 > s.x0);
    this.marksG.selectAll("rect").data(spans).join("rect")
      .attr("class", (s) => `mark ${s.m.severity}`)
      .attr("x", (s) => s.x0).attr("width", (s) => s.x1 - s.x0)
      .attr("y", margin.top).attr("height", height - margin.top - margin.bottom);
  }

  hover(ev) {
    const [mx] = d3.pointer(ev, this.svg.node());
    const t = this.x.invert(mx).getTime();
    const rows = this.series.filter((s) => s.data.length).map((s) => ({
      s, d: s.data[Math.min(s.data.length - 1, d3.bisector((p) => p.ts).center(s.data, t))] }));
    if (!rows.length) return;
    const ts = rows[0].d.ts;
    this.focus.style("display", null).attr("transform", `translate(${this.x(ts)},0)`);
    // Built as elements, not HTML: the page's CSP forbids inline style attributes.
    this.tooltip.attr("hidden", null).text("").style("left", `${ev.pageX + 14}px`).style("top", `${ev.pageY - 28}px`);
    this.tooltip.append("div").attr("class", "time").text(fmtTime(new Date(ts)));
    for (const { s, d } of rows) {
      const row = this.tooltip.append("div").attr("class", "row");
      swatch(row, s.color);
      row.append("span").text(`${s.label}: `);
      row.append("b").attr("class", "value").text(`${fmtW(d.w)} W`);
      if (d.min !== undefined) row.append("small").text(` min ${fmtW(d.min)} · max ${fmtW(d.max)}`);
    }
    // The alerts whose band is under the pointer (not at the nearest point, which may lie outside the band).
    for (const m of this.marks.filter((m) => m.from <= t && (m.to === null || t < m.to))) {
      this.tooltip.append("div").attr("class", `alert ${m.severity}`).text(m.summary);
    }
    // Near the right edge it opens to the left of the pointer, so it is never cut off by the window.
    const width = this.tooltip.node().offsetWidth;
    if (ev.pageX + 14 + width > window.scrollX + document.documentElement.clientWidth) {
      this.tooltip.style("left", `${Math.max(0, ev.pageX - 14 - width)}px`);
    }
  }

  unhover() {
    this.focus.style("display", "none");
    this.tooltip.attr("hidden", "");
  }
}

function swatch(parent, color) {
  parent.append("span").attr("class", "swatch").style("background", color);
}

// Energy in the visible range: the step line's area. A point (or a bucket's mean) holds since the previous one, as a
// blink's watts hold over its interval; summing buckets' own `wh` would miss the empty buckets between sparse points.
function energyWh(data, from, to) {
  let wh = 0;
  for (let i = 1; i < data.length; i++) {
    const a = Math.max(data[i - 1].ts, from), b = Math.min(data[i].ts, to);
    if (b > a) wh += data[i].w * (b - a) / 3600000;
  }
  return wh;
}

function sparkline(svgNode, values) {
  const w = 120, h = 24;
  const svg = d3.select(svgNode).attr("viewBox", `0 0 ${w} ${h}`);
  const x = d3.scaleLinear().domain(d3.extent(values, (d) => d.ts)).range([1, w - 1]);
  const y = d3.scaleLinear().domain([0, d3.max(values, (d) => d.w) || 1]).range([h - 1, 1]);
  svg.selectAll("path").data([values]).join("path").attr("d", d3.line().x((d) => x(d.ts)).y((d) => y(d.w)));
}
