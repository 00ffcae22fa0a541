// The Deployments page: polls api/deployments, redraws only the deployments that changed, keeps
// open details open, and fetches each deployment's lineage when its endpoint or version changes.
"use strict";

const POLL_MS = Number(document.body.dataset.pollMs) || 1000;
const table = document.getElementById("deployments");
const shown = new Map(); // deployment name -> JSON of what is drawn
const lineageKeys = new Map(); // deployment name -> "arn|serving version" of the lineage drawn
const lineageCache = new Map(); // deployment name -> the lineage's HTML

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function versionLink(d, version) {
  if (!version) return "–";
  const link = d.links[version];
  return link ? `<a class="version" href="../${esc(link)}">v${esc(version)}</a>` : `v${esc(version)}`;
}

function status(value) {
  return `<span class="status status-${esc(value)}" data-status="${esc(value)}">${esc(value)}</span>`;
}

function drift(found) {
  // the drift loop's latest monitor verdict (a policy `monitor` section), under the status
  if (!found) return "";
  const title = `${found.at || ""} v${found.version || "?"}: ${found.message || ""}`;
  return `<div class="drift ${found.verdict === "drift" ? "drifted" : ""}" title="${esc(title)}">${esc(found.verdict)}</div>`;
}

function rows(items, columns) {
  const head = columns.map(([title]) => `<th>${esc(title)}</th>`).join("");
  const body = items.map((item) => `<tr>${columns.map(([, cell]) => `<td>${cell(item)}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function draw(d, open) {
  const retry = d.can_retry ? `<button class="retry" data-deployment="${esc(d.name)}">Retry</button>` : "";
  const versions = rows(d.versions, [
    ["Version", (v) => `<a href="../${esc(v.link)}">v${esc(v.version)}</a>`], ["Stage", (v) => esc(v.stage)],
    ["Aliases", (v) => esc(v.aliases.map((a) => "@" + a).join(" "))], ["Status", (v) => (v.status ? status(v.status) : "")],
    ["Message", (v) => esc(v.message)], ["Time", (v) => esc(v.time)]]);
  const audit = rows(d.audit, [
    ["Time (UTC)", (a) => esc(a.at)], ["Action", (a) => esc(a.action)], ["Result", (a) => esc(a.result)],
    ["Version", (a) => esc(a.version)], ["Who", (a) => esc(a.actor || "–")], ["Event", (a) => esc(a.trigger)],
    ["Message", (a) => esc(a.message)]]);
  return `<tr class="main">
      <td class="name">${esc(d.name)}</td><td class="model">${esc(d.model || "–")}</td>
      <td class="desired">${versionLink(d, d.desired_version)}</td><td class="serving">${versionLink(d, d.serving_version)}</td>
      <td class="state">${status(d.status)}${drift(d.drift)}</td><td class="message">${esc(d.message)}</td>
      <td class="updated">${esc(d.updated_at)}</td><td>${retry}</td></tr>
    <tr class="more"><td colspan="8"><details${open ? " open" : ""}><summary>Versions, history and lineage</summary>
      <h3>Versions with this deployment's tags</h3>${versions}
      <h3>History (newest first)</h3>${audit}
      <h3>Lineage</h3><div class="lineage">${lineageKeys.has(d.name) ? lineageCache.get(d.name) || "" : "loading…"}</div>
    </details></td></tr>`;
}

function render(data) {
  document.getElementById("protection").textContent = data.tag_protection;
  document.getElementById("empty").hidden = data.deployments.length > 0;
  const names = new Set(data.deployments.map((d) => d.name));
  for (const body of [...table.tBodies]) {
    if (!names.has(body.dataset.deployment)) { body.remove(); shown.delete(body.dataset.deployment); }
  }
  for (const d of data.deployments) {
    const json = JSON.stringify(d);
    let body = [...table.tBodies].find((b) => b.dataset.deployment === d.name);
    if (body && shown.get(d.name) === json) continue;
    const open = body ? body.querySelector("details").open : false;
    if (!body) {
      body = table.createTBody();
      body.className = "deployment";
      body.dataset.deployment = d.name;
    }
    body.innerHTML = draw(d, open);
    shown.set(d.name, json);
    loadLineage(d, body);
  }
  document.getElementById("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
}

async function loadLineage(d, body) {
  const serving = d.versions.find((v) => v.version === d.serving_version);
  const key = `${d.endpoint_arn}|${d.serving_version}|${serving ? serving.lineage : ""}`; // written after IN_SERVICE
  if (lineageKeys.get(d.name) === key) return;
  lineageKeys.set(d.name, key);
  let html;
  try {
    const reply = await fetch(`api/lineage?deployment=${encodeURIComponent(d.name)}`);
    const found = await reply.json();
    html = found.available ? graph(found.graph) + `<pre>${esc(found.text)}</pre>`
      : `<p class="note">Lineage is not shown: ${esc(found.reason || found.message)}</p>`;
  } catch (error) {
    html = `<p class="note">Lineage could not be read: ${esc(error)}</p>`;
    lineageKeys.delete(d.name);
  }
  lineageCache.set(d.name, html);
  const place = body.querySelector(".lineage");
  if (place) place.innerHTML = html;
}

function graph(g) {
  // Columns by the longest path from a source (QueryLineage's graph is acyclic), rows in order.
  const depth = new Map(g.vertices.map((v) => [v.Arn, 0]));
  for (let pass = 0; pass < g.vertices.length; pass++) {
    for (const [source, target] of g.edges) depth.set(target, Math.max(depth.get(target) || 0, (depth.get(source) || 0) + 1));
  }
  const at = new Map();
  const perColumn = [];
  for (const v of g.vertices) {
    const column = depth.get(v.Arn);
    perColumn[column] = (perColumn[column] || 0) + 1;
    at.set(v.Arn, [16 + column * 230, 16 + (perColumn[column] - 1) * 56]);
  }
  const width = 16 + perColumn.length * 230, height = 16 + Math.max(1, ...perColumn.filter(Boolean)) * 56;
  const edges = g.edges.map(([s, t, kind]) => {
    const [x1, y1] = at.get(s) || [0, 0], [x2, y2] = at.get(t) || [0, 0];
    return `<line x1="${x1 + 200}" y1="${y1 + 18}" x2="${x2}" y2="${y2 + 18}" stroke="#8a9aa8" marker-end="url(#arrow)"><title>${esc(kind)}</title></line>`;
  }).join("");
  const nodes = g.vertices.map((v) => {
    const [x, y] = at.get(v.Arn);
    const label = `${v.Type || v.LineageType || v.Arn.split(":")[5].split("/")[0]}: ${v.Name}`;
    const short = label.length > 34 ? label.slice(0, 33) + "…" : label;
    const start = v.Arn === g.start ? ' stroke-width="2" stroke="#2272b4"' : ' stroke="#b8c4ce"';
    return `<g class="vertex"><title>${esc(label)}\n${esc(v.Arn)}</title><rect x="${x}" y="${y}" width="200" height="36" rx="4" fill="#fff"${start}/>` +
      `<text x="${x + 6}" y="${y + 22}">${esc(short)}</text></g>`;
  }).join("");
  return `<svg width="${width}" height="${height}" role="img" aria-label="lineage graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#8a9aa8"/></marker></defs>${edges}${nodes}</svg>`;
}

function notice(text, error) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.className = error ? "error" : "";
  box.hidden = false;
}

table.addEventListener("click", async (event) => {
  const button = event.target.closest("button.retry");
  if (!button) return;
  button.disabled = true;
  try {
    const reply = await fetch("api/retry", {method: "POST", headers: {"Content-Type": "application/json"},
                                           body: JSON.stringify({deployment: button.dataset.deployment})});
    const found = await reply.json();
    notice(found.message, !reply.ok);
  } catch (error) {
    notice(`Retry failed: ${error}`, true);
  }
  refresh();
});

async function refresh() {
  try {
    const reply = await fetch("api/deployments", {cache: "no-store"});
    const data = await reply.json();
    if (!reply.ok) throw new Error(data.message || reply.status);
    render(data);
  } catch (error) {
    document.getElementById("refreshed").textContent = `could not refresh: ${error.message || error}`;
  }
}

async function loop() {
  await refresh();
  setTimeout(loop, POLL_MS);
}
loop();
