"""The dashboard page: one self-contained HTML document that polls the inspection API.

No template engine and no external assets (the sandbox must work offline);
every value is inserted with ``textContent``, never as HTML, because alert
summaries are whatever a client sent. Keys come from the inspection API
already shortened to ``…abcd``, so the page cannot show more.

The page asks for the counters (``/sandbox/summary``) and the newest
:data:`SHOWN` rows of each table (``?last=``), never whole histories, and
asks again only once the previous answers are in: fetching every event and
alert each second once cost a busy sandbox most of its event loop, which
delayed the answers of the very clients under test.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DASHBOARD_HTML", "REFRESH_MS", "SHOWN"]

REFRESH_MS: Final = 1000
#: Rows per table: the newest ones (the counters above the tables count them all).
SHOWN: Final = 100

DASHBOARD_HTML: Final = (
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>alertwire sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --muted:#667085; --line:#e4e7ec; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--ink); }
  header { background:#1d2330; color:#fff; padding:14px 24px; display:flex; align-items:baseline; gap:16px; }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  header .sub { color:#aab2c5; font-size:13px; }
  header #status { margin-left:auto; font-size:12px; color:#aab2c5; }
  main { padding:18px 24px; display:grid; gap:18px; }
  .counts { display:flex; gap:12px; flex-wrap:wrap; }
  .count { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 16px; min-width:120px; }
  .count b { display:block; font-size:22px; }
  .count span { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  section { background:var(--card); border:1px solid var(--line); border-radius:8px; overflow:hidden; }
  section h2 { font-size:14px; margin:0; padding:10px 14px; border-bottom:1px solid var(--line); background:#fafbfc; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:7px 14px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--muted); font-weight:500; font-size:12px; white-space:nowrap; }
  tr:last-child td { border-bottom:none; }
  td.mono, .mono { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
  .empty { color:var(--muted); padding:12px 14px; }
  .more { color:var(--muted); padding:8px 14px 0; font-size:12px; }
  .badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
  .triggered { background:#fde2e1; color:#b42318; }
  .acknowledged { background:#fef0c7; color:#b54708; }
  .resolved { background:#d1fadf; color:#027a48; }
  .sev-critical { color:#b42318; font-weight:600; } .sev-error { color:#c4320a; }
  .sev-warning { color:#b54708; } .sev-info { color:#175cd3; }
</style>
</head>
<body>
<header>
  <h1>alertwire sandbox</h1>
  <span class="sub">local PagerDuty Events API v2 + REST API + BigPanda Alerts API &middot; keys shown by their last 4 characters</span>
  <span id="status">loading&hellip;</span>
</header>
<main>
  <div class="counts">
    <div class="count"><b id="n-triggered">0</b><span>triggered</span></div>
    <div class="count"><b id="n-acknowledged">0</b><span>acknowledged</span></div>
    <div class="count"><b id="n-resolved">0</b><span>resolved</span></div>
    <div class="count"><b id="n-changes">0</b><span>change events</span></div>
    <div class="count"><b id="n-bigpanda">0</b><span>BigPanda alerts</span></div>
    <div class="count"><b id="n-events">0</b><span>requests accepted</span></div>
  </div>
  <section><h2>PagerDuty incidents</h2><div id="incidents"></div></section>
  <section><h2>PagerDuty alerts</h2><div id="alerts"></div></section>
  <section><h2>Change events</h2><div id="changes"></div></section>
  <section><h2>BigPanda alerts</h2><div id="bigpanda"></div></section>
</main>
<script>
"use strict";
const REFRESH_MS = """
    + str(REFRESH_MS)
    + """;
const SHOWN = """
    + str(SHOWN)
    + """;
function cell(row, value, cls) {
  const td = document.createElement("td");
  if (value instanceof Node) { td.appendChild(value); } else { td.textContent = value == null ? "" : String(value); }
  if (cls) td.className = cls;
  row.appendChild(td);
}
function badge(status) {
  const s = document.createElement("span");
  s.className = "badge " + status;
  s.textContent = status;
  return s;
}
function time(iso) { return iso ? new Date(iso).toLocaleTimeString([], {hour12: false}) : ""; }
function table(target, headers, rows, fill, total) {
  const box = document.getElementById(target);
  box.textContent = "";
  if (!rows.length) {
    const p = document.createElement("div");
    p.className = "empty"; p.textContent = "nothing yet";
    box.appendChild(p); return;
  }
  if (total > rows.length) {
    const p = document.createElement("div");
    p.className = "more"; p.textContent = "the newest " + rows.length + " of " + total;
    box.appendChild(p);
  }
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  for (const h of headers) { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); }
  const body = t.createTBody();
  for (const r of rows) { const tr = body.insertRow(); fill(tr, r); }
  box.appendChild(t);
}
async function getJSON(path) {
  const r = await fetch(path, {cache: "no-store"});
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}
async function refresh() {
  try {
    const last = "?last=" + SHOWN;
    const [n, alerts, changes, bigpanda, incidents] = await Promise.all([
      getJSON("/sandbox/summary"), getJSON("/sandbox/alerts" + last),
      getJSON("/sandbox/changes" + last), getJSON("/sandbox/bigpanda" + last),
      getJSON("/sandbox/incidents" + last)]);
    for (const s of ["triggered", "acknowledged", "resolved"]) {
      document.getElementById("n-" + s).textContent = n.alerts[s];
    }
    document.getElementById("n-changes").textContent = n.changes;
    document.getElementById("n-bigpanda").textContent = n.bigpanda;
    document.getElementById("n-events").textContent = n.events;
    const nAlerts = n.alerts.triggered + n.alerts.acknowledged + n.alerts.resolved;
    table("incidents", ["#", "id", "title", "status", "urgency", "service", "alerts", "incident key", "updated"],
      incidents.slice().reverse(), (tr, i) => {
        tr.id = "incident-" + i.id;
        cell(tr, i.number); cell(tr, i.id, "mono"); cell(tr, i.title); cell(tr, badge(i.status));
        cell(tr, i.urgency); cell(tr, i.service); cell(tr, i.alerts); cell(tr, i.incident_key, "mono");
        cell(tr, time(i.updated_at));
      }, n.incidents);
    table("alerts", ["#", "routing key", "dedup key", "status", "severity", "summary", "source", "triggers", "updated"],
      alerts.slice().reverse(), (tr, a) => {
        cell(tr, a.id); cell(tr, a.routing_key, "mono key"); cell(tr, a.dedup_key, "mono");
        cell(tr, badge(a.status)); cell(tr, a.severity, "sev-" + a.severity); cell(tr, a.summary);
        cell(tr, a.source); cell(tr, a.triggers); cell(tr, time(a.updated_at));
      }, nAlerts);
    table("changes", ["#", "routing key", "summary", "source", "received"],
      changes.slice().reverse(), (tr, c) => {
        const p = c.body.payload || {};
        cell(tr, c.seq); cell(tr, c.routing_key, "mono key"); cell(tr, p.summary); cell(tr, p.source);
        cell(tr, time(c.received_at));
      }, n.changes);
    table("bigpanda", ["#", "token", "app key", "status", "host / service", "check", "description", "received"],
      bigpanda.slice().reverse(), (tr, b) => {
        const a = b.body;
        cell(tr, b.seq); cell(tr, b.token, "mono key"); cell(tr, a.app_key, "mono");
        cell(tr, badge(a.status === "ok" ? "resolved" : a.status === "acknowledged" ? "acknowledged" : "triggered"));
        tr.lastChild.firstChild.textContent = a.status;
        cell(tr, a.host || a.service || a.application || a.device || a[a.primary_property]);
        cell(tr, a.check || a.sensor || a[a.secondary_property]); cell(tr, a.description);
        cell(tr, time(b.received_at));
      }, n.bigpanda);
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString([], {hour12: false});
  } catch (e) {
    document.getElementById("status").textContent = "sandbox unreachable: " + e.message;
  }
}
// The next refresh is asked for once this one is done, never on a fixed beat: a slow
// answer must not pile more requests onto a sandbox that is already busy.
async function poll() { await refresh(); setTimeout(poll, REFRESH_MS); }
poll();
</script>
</body>
</html>
"""
)
