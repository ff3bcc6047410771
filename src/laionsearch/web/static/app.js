// laionsearch web page: talks to /api/search and /api/health only; no external assets.
"use strict";
const $ = (id) => document.getElementById(id);
const PLACEHOLDER = "data:image/svg+xml;utf8," + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><rect width="100" height="100" fill="#f3f4f6"/>' +
  '<path d="M30 65l12-15 9 11 7-8 12 12z" fill="#d1d5db"/><circle cx="62" cy="38" r="6" fill="#d1d5db"/>' +
  '<text x="50" y="85" font-size="8" text-anchor="middle" fill="#9ca3af" font-family="sans-serif">image unavailable</text></svg>');
const MAX_DEPTH = 10000;  // offset + k, the API's limit
let imageData = null;   // base64 of the chosen image
let lastResults = [];

async function health() {
  try {
    const r = await fetch("/api/health");
    const h = await r.json();
    $("status").textContent = `${h.rows.toLocaleString()} rows in ${h.parts} part(s)` +
      (h.indexes.length ? ` · indexed: ${h.indexes.join(", ")}` : " · no vector index (exact search)");
    if (!h.clip) {
      $("query-text").disabled = true;
      $("image-file").disabled = true;
      $("drop-zone").classList.add("disabled");
      $("query-text").placeholder = "Text search is off";
      $("clip-note").hidden = false;
      $("clip-note").textContent = `Text and image search are off: ${h.clip_reason}. Search by row id or vector instead.`;
    }
  } catch (e) {
    $("status").textContent = "server not reachable";
  }
}

function table(headers, rows) {
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  for (const h of headers) { const th = document.createElement("th"); th.textContent = h; head.append(th); }
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const value of row) tr.insertCell().textContent = value;
  }
  return t;
}

function heading(text) { const h = document.createElement("h3"); h.textContent = text; return h; }

async function storeView() {
  const box = $("store-body");
  try {
    const r = await fetch("/api/store");
    const s = await r.json();
    if (!r.ok) { box.textContent = `Error: ${s.error}`; return; }
    const mb = (bytes) => (bytes / 1e6).toFixed(1);
    const parts = [heading(`${s.rows.toLocaleString()} rows in ${s.parts.length} part(s) · dim ${s.dim ?? "-"} · ` +
                           `${s.storage ?? "-"} · ${s.location}`),
      s.cluster
        ? table(["part", "rows", "shard"], s.parts.map((p) => [p.part, p.rows.toLocaleString(), p.shard]))
        : table(["part", "rows"], s.parts.map((p) => [p.part, p.rows.toLocaleString()]))];
    if (s.cluster) {
      parts.push(heading(`Cluster ${s.cluster.name}`),
        table(["shard", "hosts", "rows"], s.cluster.shards.map((h) => [h.shard, h.hosts.join(", "),
                                                                      h.rows.toLocaleString()])));
    }
    parts.push(heading("Vector indexes"));
    parts.push(document.createTextNode(`vector index cache: ${mb(s.index_cache.used)} MB loaded of ` +
                                       `${mb(s.index_cache.size)} MB`));
    if (s.indexes.length) {
      parts.push(table(["index", "definition", "state", "parts indexed", "MB in memory", "MB on disk"],
        s.indexes.map((i) => [i.name, i.definition, i.state, `${i.parts_indexed} of ${i.parts_total}`,
                              mb(i.bytes_in_memory), mb(i.bytes_on_disk)])));
    } else parts.push(document.createTextNode("none: searches are exact (laionsearch index create)"));
    if (s.held.length) {
      parts.push(heading("Held in memory"));
      parts.push(document.createTextNode(s.held.map((h) => `${h.column} vectors, ${h.rows.toLocaleString()} rows`)
        .join("; ") + ": exact search reads them there (serve --hold-vectors)"));
    }
    parts.push(heading("Last eval"));
    const e = s.last_eval;
    if (e) {
      parts.push(document.createTextNode(`${e.at} · ${e.column} · recall@${e.k} over ${e.queries} queries · ` +
                                         `${e.rows.toLocaleString()} rows · ${e.index}`));
      parts.push(table(["setting", "recall", "p50 ms", "p95 ms", "queries/s"],
        e.results.map((x) => [x.setting, x.recall.toFixed(3), x.p50_ms.toFixed(1), x.p95_ms.toFixed(1), Math.round(x.qps)])));
      const plot = document.createElement("img");
      plot.src = "/api/store/eval.svg?at=" + encodeURIComponent(e.at);
      plot.alt = "recall against latency per ef";
      plot.className = "plot";
      parts.push(plot);
    } else parts.push(document.createTextNode("none yet (laionsearch eval)"));
    box.className = "";
    box.replaceChildren(...parts);
  } catch (err) {
    box.textContent = "store view not available";
  }
}

// The current query: terms to move towards (positive) and away from (negative), shown as chips.
let terms = [];

function baseTerm() {
  const id = $("query-id").value.trim(), vector = $("query-vector").value.trim(), text = $("query-text").value.trim();
  if (imageData) return { term: { image: imageData }, label: `image ${$("image-name").textContent}` };
  if (id) return { term: { like_id: Number(id) }, label: `row ${id}` };
  if (vector) {
    try { return { term: { vector: JSON.parse(vector) }, label: "vector" }; }
    catch (e) { throw new Error("the vector is not valid JSON"); }
  }
  if (text) return { term: { text }, label: `“${text}”` };
  throw new Error("type a text, drop an image, or give a row id or vector");
}

function request() {
  const body = { column: $("column").value, k: Number($("k").value) || 10, exact: $("exact").checked,
                 positive: terms.filter((t) => !t.negative).map((t) => t.term),
                 negative: terms.filter((t) => t.negative).map((t) => t.term) };
  if (!body.positive.length) throw new Error("the query has no positive term left: search for something");
  if ($("safe").checked) body.nsfw = ["UNLIKELY", "UNSURE"];
  const minWidth = Number($("min-width").value), minHeight = Number($("min-height").value);
  if (minWidth > 0) body.min_width = minWidth;
  if (minHeight > 0) body.min_height = minHeight;
  return body;
}

function renderChips() {
  const box = $("chips");
  box.replaceChildren();
  for (const [i, t] of terms.entries()) {
    const chip = document.createElement("span");
    chip.className = `chip ${t.negative ? "negative" : "positive"}`;
    chip.dataset.index = i;
    chip.textContent = `${t.negative ? "less like" : "more like"} ${t.label}`;
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "remove"; remove.title = "remove"; remove.textContent = "×";
    remove.onclick = () => { terms.splice(i, 1); renderChips(); search(); };
    chip.append(remove);
    box.append(chip);
  }
}

function search() {
  if (!terms.some((t) => !t.negative)) {
    $("message").textContent = "the query has no positive term left: search for something";
    $("results").replaceChildren();
    paging = null;
    return;
  }
  try { runSearch(request()).catch((e) => { $("message").textContent = `Error: ${e.message}`; }); }
  catch (e) { $("message").textContent = e.message; }
}

function newQuery() {
  try { terms = [baseTerm()]; } catch (e) { $("message").textContent = e.message; return; }
  renderChips();
  search();
}

// Paging: the query of the results shown, where its next page starts, and the ids already shown
// (a row near a page boundary can come back on the next page: ANN order is approximate).
let paging = null;

async function runSearch(body) {
  $("message").textContent = "searching…";
  const started = performance.now();
  const r = await fetch("/api/search", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await r.json();
  if (!r.ok) { $("message").textContent = `Error: ${data.error}`; return; }
  lastResults = [];
  paging = { body, next: body.k, done: data.results.length < body.k, loading: false, shown: new Set() };
  render(data.results, false);
  $("download").disabled = !lastResults.length;
  $("message").textContent = `${lastResults.length} result(s) in ${Math.round(performance.now() - started)} ms · ${data.plan}`;
}

async function loadMore() {
  if (!paging || paging.done || paging.loading || paging.next + paging.body.k > MAX_DEPTH) return;
  const page = paging;
  page.loading = true;
  try {
    const body = { ...page.body, offset: page.next };
    const r = await fetch("/api/search", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await r.json();
    if (page !== paging) return;  // a new search started meanwhile
    if (!r.ok) { $("message").textContent = `Error: ${data.error}`; page.done = true; return; }
    page.next += body.k;
    page.done = data.results.length < body.k;
    render(data.results, true);
    $("message").textContent = `${lastResults.length} result(s) · ${data.plan}`;
  } finally {
    page.loading = false;
  }
}

function render(rows, append) {
  const grid = $("results");
  if (!append) grid.replaceChildren();
  for (const row of rows) {
    if (paging.shown.has(row.id)) continue;
    paging.shown.add(row.id);
    lastResults.push(row);
    const card = document.createElement("article");
    card.className = "card";
    card.dataset.id = row.id;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = row.caption || "";
    img.referrerPolicy = "no-referrer";
    img.onerror = () => { img.onerror = null; img.src = PLACEHOLDER; };
    img.src = /^https?:|^file:/.test(row.url) ? row.url : PLACEHOLDER;
    const body = document.createElement("div");
    body.className = "body";
    const caption = document.createElement("div");
    caption.className = "caption";
    caption.textContent = row.caption || "(no caption)";
    const meta = document.createElement("div");
    meta.className = "meta";
    const score = document.createElement("span");
    score.textContent = `similarity ${(1 - row.distance).toFixed(3)}`;
    const tag = document.createElement("span");
    tag.className = `tag ${row.NSFW || ""}`;
    tag.textContent = row.NSFW || "untagged";
    meta.append(score, tag);
    const actions = document.createElement("div");
    actions.className = "actions";
    const link = document.createElement("a");
    link.href = row.url; link.target = "_blank"; link.rel = "noopener noreferrer"; link.textContent = "open";
    const more = document.createElement("button");
    more.type = "button"; more.className = "more"; more.textContent = "more like this";
    more.onclick = () => addTerm(row.id, false);
    const less = document.createElement("button");
    less.type = "button"; less.className = "less"; less.textContent = "less like this";
    less.onclick = () => addTerm(row.id, true);
    actions.append(link, more, less);
    body.append(caption, meta, actions);
    card.append(img, body);
    grid.append(card);
  }
}

function addTerm(id, negative) {
  terms.push({ term: { like_id: Number(id) }, label: `row ${id}`, negative });
  renderChips();
  search();
}

function clearImage() { imageData = null; $("image-name").textContent = ""; }

function useFile(file) {
  if (!file) return;
  if (file.size > 10 * 1024 * 1024) { $("message").textContent = "Error: images up to 10 MB"; return; }
  const reader = new FileReader();
  reader.onload = () => {
    imageData = String(reader.result).split(",")[1];
    $("image-name").textContent = file.name;
    $("query-id").value = ""; $("query-vector").value = "";
    newQuery();
  };
  reader.readAsDataURL(file);
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if ($("query-text").value.trim() || $("query-vector").value.trim()) { clearImage(); }
  if ($("query-text").value.trim()) { $("query-id").value = ""; }
  newQuery();
});
$("image-file").addEventListener("change", (e) => useFile(e.target.files[0]));
const zone = $("drop-zone");
zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); useFile(e.dataTransfer.files[0]); });
$("download").addEventListener("click", () => {
  const blob = new Blob([JSON.stringify(lastResults, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = "laionsearch-results.json"; a.click();
  URL.revokeObjectURL(a.href);
});
$("store-view").addEventListener("toggle", () => { if ($("store-view").open) storeView(); });
new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) loadMore(); })
  .observe($("more-sentinel"));
health();
