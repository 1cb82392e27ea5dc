// The intake's page: one HTML document with its CSS and script inline (no framework, no build
// step, nothing loaded from elsewhere; the server's Content-Security-Policy forbids it). The
// script polls the snapshot endpoint, rebuilds each pipeline's hierarchy (pipeline → stages →
// jobs → steps, by the events' IDs, whatever the arrival order) and draws it as a waterfall.
// Event data is only ever put into the DOM as text (textContent), never as HTML.
//
// The script is a plain string, not a compiled function: a transpiler's helpers (tsx's __name)
// would not exist in the browser. It must not contain backticks or "${".

const CSS = String.raw`
:root {
  --bg: #f6f8fa; --card: #ffffff; --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --grid: #eef1f4;
  --success: #2da44e; --error: #cf222e; --running: #0969da; --canceled: #8c959f; --skipped: #d0d7de;
  --blocked: #bf8700; --unknown: #6e7781; --warn: #d1242f; --note: #9a6700; --accent: #632ca6;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 13px/1.4 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
header { position: sticky; top: 0; z-index: 5; display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center;
  padding: 10px 20px; background: #24292f; color: #f6f8fa; }
header h1 { font-size: 15px; margin: 0; font-weight: 600; }
header h1 .logo { color: #b392f0; margin-right: 6px; }
header .endpoint code { background: #32383f; padding: 2px 6px; border-radius: 4px; }
header .counts { color: #c9d1d9; }
header .live { margin-left: auto; display: flex; align-items: center; gap: 6px; color: #c9d1d9; }
header .live .dot { width: 8px; height: 8px; border-radius: 50%; background: var(--success); }
header .live.down .dot { background: var(--error); }
main { padding: 16px 20px 40px; max-width: 1500px; margin: 0 auto; }
.empty { padding: 40px; text-align: center; color: var(--muted); background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
.empty code { background: var(--grid); padding: 2px 6px; border-radius: 4px; color: var(--ink); }
.pipeline { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 18px; overflow: hidden; }
.ptitle { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; padding: 10px 14px; border-bottom: 1px solid var(--line); }
.ptitle h2 { margin: 0; font-size: 15px; font-weight: 600; }
.ptitle .meta { color: var(--muted); }
.ptitle .caret { border: 0; background: none; cursor: pointer; font-size: 13px; color: var(--muted); padding: 0 2px; }
.pipeline.folded .ptitle { border-bottom: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11px; font-weight: 600; color: #fff; text-transform: uppercase; letter-spacing: .03em; }
.wf { position: relative; }
.axis, .row { display: grid; grid-template-columns: minmax(260px, 34%) 1fr; }
.axis { height: 24px; border-bottom: 1px solid var(--line); background: #fafbfc; color: var(--muted); font-size: 11px; }
.axis .ticks, .row .track { position: relative; margin-right: 56px; }
.tick { position: absolute; top: 0; bottom: 0; border-left: 1px solid var(--line); padding: 5px 0 0 4px; white-space: nowrap; }
.row { min-height: 26px; border-bottom: 1px solid var(--grid); cursor: pointer; }
.row:hover { background: #f3f6f9; }
.row.selected { background: #ddf4ff; }
.row:focus { outline: 2px solid var(--running); outline-offset: -2px; }
.label { display: flex; align-items: center; gap: 6px; min-width: 0; padding: 3px 10px 3px 0; border-right: 1px solid var(--line); }
.label .tree { flex: none; }
.label .lvl { flex: none; font-size: 10px; font-weight: 600; text-transform: uppercase; color: var(--muted); width: 52px; text-align: right; }
.label .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.row[data-level="pipeline"] .name { font-weight: 600; }
.label .dur { margin-left: auto; flex: none; color: var(--muted); font-variant-numeric: tabular-nums; }
.label .flag { flex: none; color: var(--warn); font-weight: 700; }
.label .flag.note { color: var(--note); }
.track .grid { position: absolute; top: 0; bottom: 0; border-left: 1px solid var(--grid); }
.bar { position: absolute; top: 6px; height: 14px; min-width: 3px; border-radius: 3px; background: var(--unknown); color: #fff;
  font-size: 10px; line-height: 14px; font-weight: 700; overflow: visible; }
.bar .mark { position: absolute; right: -16px; top: 0; color: var(--error); font-size: 12px; }
.status-success { background-color: var(--success); }
.status-error { background-color: var(--error); }
.status-running { background-color: var(--running); background-image: repeating-linear-gradient(-45deg, rgba(255,255,255,.25) 0 6px, transparent 6px 12px);
  background-size: 17px 17px; animation: run 1s linear infinite; }
.status-canceled { background-color: var(--canceled); }
.status-skipped { background-color: var(--skipped); }
.status-blocked { background-color: var(--blocked); }
@keyframes run { from { background-position: 0 0; } to { background-position: 17px 0; } }
.bar.invalid { outline: 2px dashed var(--warn); outline-offset: 1px; }
.details { margin: 0; padding: 12px 16px 14px; border-top: 1px solid var(--line); background: #fbfcfd; }
.details h3 { margin: 0 0 6px; font-size: 13px; }
.details dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
.details dt { color: var(--muted); }
.details dd { margin: 0; overflow-wrap: anywhere; }
.details pre { margin: 6px 0 0; padding: 8px 10px; background: #fff5f5; border: 1px solid #ffcecb; border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 260px; overflow: auto; font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.details .errtype { color: var(--error); font-weight: 600; }
.details ul { margin: 6px 0 0; padding-left: 18px; }
.details .problem { color: var(--warn); }
.details .note { color: var(--note); }
.details .close { float: right; border: 1px solid var(--line); background: #fff; border-radius: 6px; cursor: pointer; padding: 1px 8px; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; padding: 6px 14px; color: var(--muted); font-size: 11px; border-top: 1px solid var(--grid); }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; background: var(--c); }
.rejected { background: var(--card); border: 1px solid #ffcecb; border-radius: 8px; padding: 10px 14px; }
.rejected h2 { font-size: 14px; margin: 0 0 6px; color: var(--warn); }
.rejected li { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
.more { padding: 6px 14px; color: var(--muted); }
`;

const SCRIPT = String.raw`
"use strict";
var SNAPSHOT = "/api/intake/snapshot";
var state = { revision: -1, offset: 0, data: null, selected: {}, expanded: {} };
// Drawn in full: the newest pipelines (older ones fold to their title until clicked), and at
// most this many rows each: the page stays quick when the intake holds much.
var OPEN_PIPELINES = 10, MAX_ROWS = 2000;
var LEVEL_ORDER = { pipeline: 0, stage: 1, job: 2, step: 3 };
var ICON = { success: "\u2714", error: "\u2716", running: "\u25B6", canceled: "\u2298", skipped: "\u21B7", blocked: "\u23F8" };

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function ms(iso) {
  if (!iso) return NaN;
  // RFC3339 with microseconds: keep milliseconds for Date.parse.
  return Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
}
function now() { return Date.now() + state.offset; }
function fmt(d) {
  if (!isFinite(d) || d < 0) return "?";
  if (d < 1000) return Math.round(d) + " ms";
  if (d < 60000) return (d / 1000).toFixed(d < 10000 ? 2 : 1) + " s";
  var m = Math.floor(d / 60000), s = Math.round((d % 60000) / 1000);
  if (m < 60) return m + " min" + (s ? " " + s + " s" : "");
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}
function clock(t) { return isFinite(t) ? new Date(t).toLocaleTimeString() : "?"; }
function endOf(e) { var t = ms(e.end); return isFinite(t) ? t : (e.status === "running" ? now() : ms(e.start)); }
function statusClass(s) { return "status-" + (ICON[s] ? s : "unknown"); }

// Pipeline → stages and stageless jobs → jobs → steps, from the IDs; children by start time.
function buildTree(p) {
  var byKey = {}, root = null, nodes = [];
  p.events.forEach(function (e) {
    var n = { ev: e, children: [], orphan: false };
    byKey[e.key] = n; nodes.push(n);
    if (e.level === "pipeline" && !root) root = n;
  });
  if (!root) {
    var first = p.events[0] || {};
    root = { ev: { key: "pipeline:?", level: "pipeline", name: first.pipelineName || "(pipeline event not received yet)", status: "?", start: null, end: null, missing: true, problems: [], notes: [], accepted: true }, children: [], orphan: false };
  }
  nodes.forEach(function (n) {
    if (n === root) return;
    var e = n.ev, parent = null;
    if (e.level === "step" && e.jobId) parent = byKey["job:" + e.jobId] || null;
    if (!parent && (e.level === "step" || e.level === "job") && e.stageId) parent = byKey["stage:" + e.stageId] || null;
    if (!parent && ((e.level === "step" && e.jobId) || ((e.level === "step" || e.level === "job") && e.stageId))) n.orphan = true;
    (parent || root).children.push(n);
  });
  (function sort(n) {
    n.children.sort(function (a, b) {
      return (ms(a.ev.start) - ms(b.ev.start)) || (LEVEL_ORDER[a.ev.level] - LEVEL_ORDER[b.ev.level]) || String(a.ev.name).localeCompare(String(b.ev.name));
    });
    n.children.forEach(sort);
  })(root);
  return root;
}
function flatten(root) {
  var rows = [];
  (function walk(n, depth, prefix, last) {
    rows.push({ node: n, depth: depth, prefix: prefix, last: last });
    n.children.forEach(function (c, i) { walk(c, depth + 1, depth === 0 ? "" : prefix + (last ? "\u2003\u2002" : "\u2502\u2002"), i === n.children.length - 1); });
  })(root, 0, "", true);
  return rows;
}
function extent(p) {
  var t0 = Infinity, t1 = -Infinity;
  p.events.forEach(function (e) {
    var s = ms(e.start), f = endOf(e);
    if (isFinite(s)) t0 = Math.min(t0, s);
    if (isFinite(f)) t1 = Math.max(t1, f);
    if (isFinite(s)) t1 = Math.max(t1, s);
  });
  if (!isFinite(t0)) { t0 = now(); t1 = t0 + 1; }
  return { t0: t0, t1: Math.max(t1, t0 + 1) };
}
function niceStep(span) {
  var raw = span / 6, pow = Math.pow(10, Math.floor(Math.log10(raw))), steps = [1, 2, 2.5, 5, 10];
  for (var i = 0; i < steps.length; i++) if (steps[i] * pow >= raw) return steps[i] * pow;
  return 10 * pow;
}
function pipelineStart(p) {
  var pe = p.events.filter(function (e) { return e.level === "pipeline"; })[0];
  var t = pe ? ms(pe.start) : NaN;
  return isFinite(t) ? t : extent(p).t0;
}
function hasLive(p) { return p.events.some(function (e) { return e.status === "running"; }); }

function renderPipeline(p, open) {
  var root = buildTree(p), all = flatten(root), rows = all.slice(0, MAX_ROWS), pe = root.ev;
  var sec = el("section", "pipeline");
  sec.dataset.pipelineId = p.id;
  sec.dataset.name = pe.name;
  sec.dataset.status = pe.status;
  var title = el("div", "ptitle");
  var caret = el("button", "caret", open ? "\u25BE" : "\u25B8");
  caret.title = open ? "fold" : "show the waterfall";
  caret.setAttribute("aria-expanded", String(open));
  caret.addEventListener("click", function () { state.expanded[p.id] = !open; render(state.data); });
  title.appendChild(caret);
  var badge = el("span", "badge " + statusClass(pe.status), pe.status);
  title.appendChild(badge);
  title.appendChild(el("h2", null, pe.name));
  var meta = el("span", "meta");
  title.appendChild(meta);
  sec.appendChild(title);
  if (!open) {
    sec.classList.add("folded");
    sec._layout = function () {
      var x = extent(p);
      meta.textContent = fmt(x.t1 - x.t0) + " \u00B7 started " + clock(x.t0) + " \u00B7 " + p.events.length + " event(s) \u00B7 folded";
    };
    sec._live = false;
    return sec;
  }

  var wf = el("div", "wf");
  var axis = el("div", "axis");
  axis.appendChild(el("div", "label"));
  var ticks = el("div", "ticks");
  axis.appendChild(ticks);
  wf.appendChild(axis);
  var rowEls = [];
  rows.forEach(function (r) {
    var e = r.node.ev;
    var row = el("div", "row");
    row.tabIndex = 0;
    row.setAttribute("role", "button");
    row.dataset.key = e.key;
    row.dataset.level = e.level;
    row.dataset.name = e.name;
    row.dataset.status = e.status;
    if (state.selected[p.id] === e.key) row.classList.add("selected");
    var label = el("div", "label");
    label.appendChild(el("span", "lvl", e.level));
    label.appendChild(el("span", "tree", r.depth === 0 ? "" : r.prefix + (r.last ? "\u2514\u2500" : "\u251C\u2500")));
    var name = el("span", "name", e.name);
    name.title = e.name;
    label.appendChild(name);
    if (e.problems && e.problems.length) { var f = el("span", "flag", "\u26A0 " + e.problems.length); f.title = "rejected: " + e.problems.map(function (x) { return x.field + ": " + x.message; }).join("; "); label.appendChild(f); }
    else if (e.notes && e.notes.length) { var nf = el("span", "flag note", "\u24D8"); nf.title = e.notes.map(function (x) { return x.field + ": " + x.message; }).join("; "); label.appendChild(nf); }
    if (r.node.orphan) { var o = el("span", "flag note", "parent not received"); label.appendChild(o); }
    var dur = el("span", "dur");
    label.appendChild(dur);
    row.appendChild(label);
    var track = el("div", "track");
    var bar = el("div", "bar " + statusClass(e.status));
    if (e.problems && e.problems.length) bar.classList.add("invalid");
    bar.title = e.level + " " + e.name + " \u2014 " + e.status + (e.error && e.error.message ? ": " + e.error.message.slice(0, 200) : "");
    if (e.status === "error") bar.appendChild(el("span", "mark", "\u2716"));
    track.appendChild(bar);
    row.appendChild(track);
    var select = function () {
      state.selected[p.id] = state.selected[p.id] === e.key ? null : e.key;
      sec.querySelectorAll(".row.selected").forEach(function (x) { x.classList.remove("selected"); });
      if (state.selected[p.id]) row.classList.add("selected");
      showDetails(sec, p, state.selected[p.id] ? e : null, r.node);
    };
    row.addEventListener("click", select);
    row.addEventListener("keydown", function (k) { if (k.key === "Enter" || k.key === " ") { k.preventDefault(); select(); } });
    wf.appendChild(row);
    rowEls.push({ ev: e, bar: bar, dur: dur, track: track });
  });
  sec.appendChild(wf);
  if (all.length > rows.length) sec.appendChild(el("div", "more", (all.length - rows.length) + " more row(s) not drawn"));
  if (p.notKept > 0) sec.appendChild(el("div", "more", p.notKept + " more event(s) of this pipeline were not kept (the intake keeps " + p.events.length + ")"));
  var legend = el("div", "legend");
  ["success", "error", "running", "canceled", "skipped", "blocked"].forEach(function (s) {
    var l = el("span", null, s); l.style.setProperty("--c", "var(--" + s + ")"); legend.appendChild(l);
  });
  var inv = el("span", null, "rejected by validation (\u26A0)"); inv.style.setProperty("--c", "var(--warn)"); legend.appendChild(inv);
  sec.appendChild(legend);
  var details = el("div", "details");
  details.hidden = true;
  sec.appendChild(details);

  sec._layout = function () {
    var x = extent(p), span = x.t1 - x.t0, step = niceStep(span);
    ticks.textContent = "";
    for (var t = 0; t <= span + 1e-9; t += step) {
      var tk = el("div", "tick", fmt(t)); tk.style.left = (100 * t / span) + "%"; ticks.appendChild(tk);
    }
    rowEls.forEach(function (r) {
      var s = ms(r.ev.start), f = endOf(r.ev);
      if (!isFinite(s)) { r.bar.style.display = "none"; r.dur.textContent = ""; return; }
      if (!isFinite(f) || f < s) f = s;
      r.bar.style.left = (100 * (s - x.t0) / span) + "%";
      r.bar.style.width = (100 * (f - s) / span) + "%";
      r.dur.textContent = (r.ev.status === "running" ? "running " : "") + fmt(f - s);
    });
    var pd = isFinite(ms(pe.start)) ? fmt(endOf(pe) - ms(pe.start)) : fmt(span);
    meta.textContent = pd + " \u00B7 started " + clock(x.t0) + " \u00B7 " + p.events.length + " event(s)" + (p.id ? " \u00B7 " + p.id : "");
  };
  sec._live = hasLive(p);
  var sel = state.selected[p.id];
  if (sel) {
    var found = rows.filter(function (r) { return r.node.ev.key === sel; })[0];
    if (found) showDetails(sec, p, found.node.ev, found.node);
  }
  return sec;
}

function showDetails(sec, p, e, node) {
  var d = sec.querySelector(".details");
  d.textContent = "";
  if (!e) { d.hidden = true; return; }
  d.hidden = false;
  var close = el("button", "close", "close");
  close.addEventListener("click", function () { state.selected[p.id] = null; sec.querySelectorAll(".row.selected").forEach(function (x) { x.classList.remove("selected"); }); d.hidden = true; });
  d.appendChild(close);
  var h = el("h3");
  h.appendChild(el("span", "badge " + statusClass(e.status), e.status));
  h.appendChild(document.createTextNode(" " + e.level + " " + e.name));
  d.appendChild(h);
  var dl = el("dl");
  var add = function (k, v) { if (v === null || v === undefined || v === "") return; dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); };
  var s = ms(e.start), f = endOf(e);
  add("duration", isFinite(s) ? (e.status === "running" ? "running for " : "") + fmt(f - s) : null);
  add("start", e.start); add("end", e.end); add("id", e.id); add("url", e.url);
  if (node && node.orphan) add("parent", "not received (stage_id " + (e.stageId || "-") + ", job_id " + (e.jobId || "-") + ")");
  add("request", "#" + e.request + (e.accepted ? " (accepted)" : " (rejected with 400)"));
  d.appendChild(dl);
  if (e.error && (e.error.message || e.error.type)) {
    var eh = el("div");
    eh.appendChild(el("span", "errtype", e.error.type || "Error"));
    if (e.error.domain) eh.appendChild(document.createTextNode(" \u00B7 domain " + e.error.domain));
    d.appendChild(eh);
    d.appendChild(el("pre", "errmsg", e.error.message || "(no message)"));
  }
  if (e.problems && e.problems.length) {
    d.appendChild(el("div", "problem", "Rejected by the intake (the API would answer 400):"));
    var ul = el("ul");
    e.problems.forEach(function (x) { ul.appendChild(el("li", "problem", x.field + ": " + x.message)); });
    d.appendChild(ul);
  }
  if (e.notes && e.notes.length) {
    var nl = el("ul");
    e.notes.forEach(function (x) { nl.appendChild(el("li", "note", "note \u2014 " + x.field + ": " + x.message)); });
    d.appendChild(nl);
  }
}

function render(data) {
  var main = document.getElementById("pipelines");
  var c = data.counts;
  document.getElementById("counts").textContent = c.requests + " request(s) \u00B7 " + c.eventsAccepted + " event(s) accepted \u00B7 " + c.rejected + " request(s) rejected";
  main.textContent = "";
  var ps = data.pipelines.slice().sort(function (a, b) { return (pipelineStart(b) - pipelineStart(a)) || (b.firstReceivedAt - a.firstReceivedAt); });
  if (ps.length === 0 && data.rejected.length === 0) {
    var empty = el("div", "empty");
    empty.appendChild(el("p", null, "No pipeline events received yet."));
    var hint = el("p");
    hint.appendChild(document.createTextNode("Point the exporter here: "));
    hint.appendChild(el("code", null, "DD_CI_PIPELINE_ENDPOINT=" + location.origin + "/api/v2/ci/pipeline"));
    empty.appendChild(hint);
    main.appendChild(empty);
  }
  ps.forEach(function (p, i) {
    var open = state.expanded[p.id] === undefined ? i < OPEN_PIPELINES : state.expanded[p.id];
    var s = renderPipeline(p, open); main.appendChild(s); s._layout();
  });
  if (data.rejected.length) {
    var rj = el("section", "rejected");
    rj.appendChild(el("h2", null, "Rejected requests (400), newest first"));
    var ul = el("ul");
    data.rejected.slice().reverse().forEach(function (r) {
      var li = el("li", null, "request #" + r.request + " (" + r.events + " event(s), " + clock(r.receivedAt) + "):");
      var inner = el("ul");
      r.details.forEach(function (d) { inner.appendChild(el("li", null, d)); });
      li.appendChild(inner); ul.appendChild(li);
    });
    rj.appendChild(ul);
    main.appendChild(rj);
  }
}

function tick() {
  document.querySelectorAll("section.pipeline").forEach(function (s) { if (s._live) s._layout(); });
}

function poll() {
  fetch(SNAPSHOT + "?since=" + state.revision, { cache: "no-store" }).then(function (r) {
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }).then(function (data) {
    state.offset = data.now - Date.now();
    document.getElementById("live").className = "live";
    document.getElementById("livetext").textContent = "live";
    if (!data.unchanged) { state.revision = data.revision; state.data = data; render(data); }
    document.body.dataset.revision = String(state.revision);
  }).catch(function () {
    document.getElementById("live").className = "live down";
    document.getElementById("livetext").textContent = "intake unreachable, retrying";
  }).then(function () { setTimeout(poll, 500); });
}

document.getElementById("endpoint").textContent = location.origin + "/api/v2/ci/pipeline";
setInterval(tick, 200);
poll();
`;

export function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CI pipelines · local intake</title>
<style>${CSS}</style>
</head>
<body>
<header>
  <h1><span class="logo">◆</span>datadog-ci-pipeline-exporter · local intake</h1>
  <span class="endpoint">POST <code id="endpoint"></code></span>
  <span class="counts" id="counts"></span>
  <span class="live" id="live"><span class="dot"></span><span id="livetext">connecting</span></span>
</header>
<main id="pipelines"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
