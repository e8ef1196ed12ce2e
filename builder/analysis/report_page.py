"""The page of `pybuild report` (report.py fills the ``{{…}}`` places): HTML, CSS and the
script that renders the wasted files and each layer's tree from the JSON island.  Nothing here
loads anything from anywhere: it opens from file:// with no network."""

PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{{title}}</title>
<style>
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f8fafc; --accent:#2563eb;
        --add:#15803d; --mod:#b45309; --del:#b91c1c; --wh:#7c3aed; --dir:#374151; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--ink); background:var(--bg); }
header { background:#0f172a; color:#f8fafc; padding:18px 28px; }
header h1 { margin:0; font-size:20px; font-weight:600; }
header .sub { color:#94a3b8; font-size:13px; margin-top:2px; word-break:break-all; }
main { padding:20px 28px 40px; max-width:1400px; margin:0 auto; }
h2 { font-size:15px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); margin:26px 0 10px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:14px 16px; position:relative; }
.card .value { font-size:24px; font-weight:650; font-variant-numeric:tabular-nums; }
.card .label { color:var(--muted); font-size:12px; }
#card-efficiency { grid-column:span 2; display:flex; align-items:center; gap:16px; }
#card-efficiency .value { font-size:34px; color:#0f172a; }
#card-efficiency .gauge { order:-1; flex:none; }
#card-reclaimable .value { color:var(--del); }
.grid { display:grid; grid-template-columns:minmax(0,1.05fr) minmax(0,1fr); gap:20px; align-items:start; }
@media (max-width:1000px) { .grid { grid-template-columns:1fr; } }
.panel { background:#fff; border:1px solid var(--line); border-radius:10px; padding:8px 0; }
.layer { display:grid; grid-template-columns:30px 170px 62px minmax(0,1fr) 64px; gap:10px;
         align-items:center; padding:5px 14px; cursor:pointer; border-left:3px solid transparent; }
.layer:hover { background:#f1f5f9; }
.layer.selected { background:#eff6ff; border-left-color:var(--accent); }
.layer .idx { color:var(--muted); font-variant-numeric:tabular-nums; text-align:right; }
.bar-wrap { background:#f1f5f9; border-radius:4px; height:14px; overflow:hidden; }
.bar { display:block; height:100%; background:linear-gradient(90deg,#3b82f6,#6366f1); border-radius:4px; }
.layer .size { font-variant-numeric:tabular-nums; text-align:right; color:var(--dir); }
.layer .cmd { font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; white-space:nowrap;
              overflow:hidden; text-overflow:ellipsis; color:#334155; }
.badge { font-size:11px; background:#fee2e2; color:var(--del); border-radius:9px; padding:1px 7px; white-space:nowrap;
         justify-self:end; }
.detail h3 { margin:6px 14px 2px; font-size:15px; }
.detail .meta { margin:0 14px 8px; color:var(--muted); font-size:12px; word-break:break-all; }
.detail .created { margin:0 14px 8px; font:12px/1.4 ui-monospace,Menlo,Consolas,monospace; background:#f8fafc;
                   border:1px solid var(--line); border-radius:6px; padding:6px 8px; white-space:pre-wrap; word-break:break-all; }
.legend { margin:0 14px 6px; font-size:12px; display:flex; gap:12px; flex-wrap:wrap; }
.legend span::before { content:""; display:inline-block; width:9px; height:9px; border-radius:2px; margin-right:4px; }
.legend .added::before { background:var(--add); } .legend .modified::before { background:var(--mod); }
.legend .deleted::before { background:var(--del); } .legend .whiteout::before { background:var(--wh); }
.legend .unchanged::before { background:#9ca3af; }
#tree { font:12.5px/1.55 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; padding:4px 14px 10px;
        max-height:560px; overflow:auto; }
#tree ul { list-style:none; margin:0; padding-left:16px; border-left:1px dotted #d1d5db; }
#tree > ul { padding-left:0; border-left:0; }
#tree summary { cursor:pointer; }
#tree .n { display:inline-flex; gap:8px; }
#tree .s { color:var(--muted); }
#tree .added { color:var(--add); } #tree .modified { color:var(--mod); }
#tree .deleted { color:var(--del); text-decoration:line-through; } #tree .whiteout { color:var(--wh); text-decoration:line-through; }
#tree .opaque { color:var(--wh); } #tree .unchanged, #tree .context { color:#6b7280; }
.tag { font:11px system-ui,sans-serif; border-radius:8px; padding:0 6px; background:#f3f4f6; }
table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); border-radius:10px; overflow:hidden; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; background:#f8fafc; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.path { font:12.5px ui-monospace,Menlo,Consolas,monospace; word-break:break-all; }
.why { display:inline-block; font-size:12px; border-radius:8px; padding:1px 8px; margin:1px 4px 1px 0; }
.why.metadata-only { background:#fef3c7; color:#92400e; } .why.overwritten { background:#ffedd5; color:#9a3412; }
.why.deleted { background:#fee2e2; color:#991b1b; } .why.deleted-dir { background:#fce7f3; color:#9d174d; }
.why.duplicate { background:#e0e7ff; color:#3730a3; }
.empty { color:var(--muted); padding:10px 14px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:16px; }
</style>
</head>
<body>
<header><h1>Image analysis</h1><div class="sub">{{name}}</div></header>
<main>
<section class="cards">
{{cards}}
</section>
<div class="grid">
<section>
<h2>Layers <span style="text-transform:none;letter-spacing:0">(top first; click one)</span></h2>
<div class="panel" id="layers">
{{chart}}
</div>
</section>
<section>
<h2>Layer contents</h2>
<div class="panel detail" id="detail">
<h3 id="detail-title"></h3>
<div class="meta" id="detail-meta"></div>
<div class="created" id="detail-created"></div>
<div class="legend"><span class="added">added</span><span class="modified">modified</span>
<span class="deleted">deleted</span><span class="whiteout">whiteout</span><span class="unchanged">copied up</span></div>
<div id="tree"></div>
</div>
</section>
</div>
<h2>Wasted files, and why</h2>
<div id="wasted"></div>
</main>
<footer>Made by pybuild. dive's numbers (efficiency, wasted bytes) are computed as dive computes them; reclaimable bytes count every copy but the one the image shows.</footer>
<script type="application/json" id="data">{{data}}</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const TAGS = {unchanged: "copied up", opaque: "opaque: hides the layers below"};
function esc(s) { return String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c])); }
function size(n) {
  if (n < 10) return n + " B";
  const units = ["B","kB","MB","GB","TB","PB","EB"];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const v = Math.floor(n / Math.pow(1000, e) * 10 + 0.5) / 10;
  return (v < 10 ? v.toFixed(1) : v.toFixed(0)) + " " + units[e];
}
function buildTree(items) {
  const root = {children: new Map()};
  for (const [path, status, bytes, kind] of items) {
    const parts = path.split("/").filter(p => p);
    let node = root;
    parts.forEach((name, i) => {
      if (!node.children.has(name)) node.children.set(name, {name, children: new Map(), status: "context", size: 0, kind: "dir"});
      node = node.children.get(name);
      if (i === parts.length - 1) { node.status = status; node.size = bytes; node.kind = kind; }
    });
  }
  return root;
}
function renderNode(node) {
  const names = [...node.children.keys()].sort();
  if (!names.length) return "";
  let out = "<ul>";
  for (const name of names) {
    const c = node.children.get(name);
    const label = '<span class="n"><span class="' + c.status + '">' + esc(c.name) + (c.kind === "dir" ? "/" : "") +
      '</span>' + (c.status !== "context" ? '<span class="tag">' + (TAGS[c.status] || c.status) + '</span>' : "") +
      (c.size ? '<span class="s">' + size(c.size) + '</span>' : "") + '</span>';
    if (c.children.size) out += "<li><details open><summary>" + label + "</summary>" + renderNode(c) + "</details></li>";
    else out += "<li>" + label + "</li>";
  }
  return out + "</ul>";
}
function showLayer(i) {
  const layer = DATA.layers[i];
  document.querySelectorAll("#layers .layer").forEach(el => el.classList.toggle("selected", Number(el.dataset.layerIndex) === i));
  document.getElementById("detail-title").textContent = "Layer " + i + " \u2014 " + size(layer.size);
  document.getElementById("detail-meta").textContent = layer.count + " changes \u00b7 " + (layer.digest || layer.id);
  document.getElementById("detail-created").textContent = layer.createdBy;
  const tree = document.getElementById("tree");
  tree.dataset.layerIndex = String(i);
  const more = layer.count > layer.items.length ? '<div class="empty">\u2026 and ' + (layer.count - layer.items.length) + " more</div>" : "";
  tree.innerHTML = layer.items.length ? renderNode(buildTree(layer.items)) + more : '<div class="empty">This layer changes no files.</div>';
}
function renderWasted() {
  const rows = DATA.wasted;
  if (!rows.length) { document.getElementById("wasted").innerHTML = '<div class="empty">No wasted files.</div>'; return; }
  let out = "<table><thead><tr><th>Path</th><th>Saves</th><th>Stored</th><th>Layers</th><th>Why</th></tr></thead><tbody>";
  for (const w of rows) {
    const why = w.reasons.map(r => '<span class="why ' + r.reason + '" title="' + esc(DATA.explain[r.reason]) + '">' +
      esc(r.reason + " @" + r.layer + (r.path ? " " + r.path : "")) + "</span>").join("");
    out += '<tr><td class="path">' + esc(w.file) + '</td><td class="num">' + size(w.reclaimableBytes + w.duplicateBytes) +
      '</td><td class="num">' + size(w.sizeBytes) + '</td><td class="num">' + w.layers.join(", ") + "</td><td>" + why + "</td></tr>";
  }
  document.getElementById("wasted").innerHTML = out + "</tbody></table>";
}
document.querySelectorAll("#layers .layer").forEach(el => {
  el.addEventListener("click", () => showLayer(Number(el.dataset.layerIndex)));
  el.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); showLayer(Number(el.dataset.layerIndex)); } });
});
renderWasted();
showLayer(DATA.layers.length ? DATA.layers.length - 1 : 0);
</script>
</body>
</html>
"""  # noqa: E501 (CSS and JS lines)
