// drumscribe web: the three pages over the HTTP API of drumscribe/web/app.py (docs/web.md). Plain JS, no build.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { progressLog: [], info: null, audio: null, result: null, file: null, buffers: {}, playing: null, generate: {} };
let ctx = null;
function audioContext() {
  if (!ctx) ctx = new AudioContext();
  if (ctx.state === "suspended") ctx.resume();
  return ctx;
}

// ---- messages: one line, never a stack trace ------------------------------------------------------------------
function showMessage(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = "message" + (kind === "info" ? " info" : "");
  box.hidden = !text;
}
async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
    if (body && body.detail) return typeof body.detail === "string" ? body.detail
      : body.detail.map((d) => `${d.loc.slice(-1)[0]}: ${d.msg}`).join("; ");
  } catch (e) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}
function newJob() { return Math.random().toString(36).slice(2) + Date.now().toString(36); }

// ---- tabs -----------------------------------------------------------------------------------------------------
document.querySelectorAll("nav .tab").forEach((tab) => tab.addEventListener("click", () => {
  document.querySelectorAll("nav .tab").forEach((t) => t.classList.toggle("active", t === tab));
  document.querySelectorAll(".page").forEach((p) => { p.hidden = p.id !== "page-" + tab.dataset.page; });
  showMessage("");
}));

function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles(await droppedFiles(e.dataTransfer));
  });
}
// files of a drop, folders walked (each file keeps its path below the dropped folder)
async function droppedFiles(transfer) {
  const entries = [...(transfer.items || [])].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...transfer.files].map((f) => ({ file: f, path: f.name }));
  const out = [];
  async function walk(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((ok, bad) => entry.file(ok, bad));
      out.push({ file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, bad) => reader.readEntries(ok, bad));
        if (!batch.length) break;
        for (const child of batch) await walk(child, prefix + entry.name + "/");
      }
    }
  }
  for (const entry of entries) await walk(entry, "");
  return out;
}
function setProgress(id, fraction, label) {
  const box = $(id);
  box.hidden = false;
  box.querySelector(".bar").style.width = `${Math.round(100 * Math.max(0, Math.min(1, fraction)))}%`;
  box.querySelector(".label").textContent = label;
  state.progressLog.push(label);  // what the bar said, in order (the tests read it)
}
// POST a form with upload progress (XMLHttpRequest: fetch has no upload events) -> {ok, status, json}
function postForm(url, form, onUpload) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onUpload) onUpload(e.loaded / e.total); };
    xhr.onload = () => resolve({ ok: xhr.status < 300, status: xhr.status, json: xhr.response });
    xhr.onerror = () => resolve({ ok: false, status: 0, json: { error: "the server cannot be reached; is drumscribe web still running?" } });
    xhr.send(form);
  });
}
function pollProgress(job, id, label) {
  let stop = false;
  (async () => {
    while (!stop) {
      await new Promise((r) => setTimeout(r, 250));
      if (stop) break;
      try {
        const p = await (await fetch(`/api/progress/${job}`)).json();
        if (!stop && p.stage !== "unknown" && p.stage !== "uploading" && p.stage !== "done") setProgress(id, p.fraction, `${label} ${Math.round(100 * p.fraction)}%`);
      } catch (e) { /* the next poll */ }
    }
  })();
  return () => { stop = true; };
}
function fillSelect(select, values, chosen) {
  select.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = o.textContent = v;
    if (v === chosen) o.selected = true;
    select.appendChild(o);
  }
}

// ---- start ----------------------------------------------------------------------------------------------------
async function start() {
  const response = await fetch("/api/info");
  if (!response.ok) { showMessage(await errorOf(response)); return; }
  const info = state.info = await response.json();
  fillSelect($("drum-map"), info.drum_maps, info.default_drum_map);
  fillSelect($("kit"), info.kits, info.default_kit);
  fillSelect($("preset"), info.presets, info.default_preset);
  $("upload-limit").textContent = `(uploads up to ${info.max_upload_mb} MB)`;
  setUpGenerator(info.generator);
  $("sort-state").textContent = info.sort.available ? "" : info.sort.reason;
  document.body.dataset.ready = "1";
}

// ---- transcribe -----------------------------------------------------------------------------------------------
const AUDIO_TYPES = [".mp3", ".wav", ".flac", ".ogg", ".aif", ".aiff"];
dropZone($("drop-transcribe"), (items) => items.length && transcribe(items[0].file));
$("file-transcribe").addEventListener("change", (e) => e.target.files.length && transcribe(e.target.files[0]));
$("drum-map").addEventListener("change", () => state.file && transcribe(state.file));

async function transcribe(file) {
  showMessage("");
  stopPlaying();
  const limit = state.info ? state.info.max_upload_mb : 200;
  if (file.size > limit * 1024 * 1024) {
    showMessage(`'${file.name}' (${(file.size / 1e6).toFixed(0)} MB) is over the upload limit of ${limit} MB`);
    return;
  }
  state.file = file;
  const job = newJob();
  const form = new FormData();
  form.append("audio", file, file.name);
  form.append("drum_map", $("drum-map").value);
  form.append("job", job);
  document.body.dataset.transcribed = "";
  setProgress("progress-transcribe", 0, `uploading ${file.name}`);
  const stopPoll = pollProgress(job, "progress-transcribe", `transcribing ${file.name}`);
  const reply = await postForm("/api/transcribe", form,
    (f) => setProgress("progress-transcribe", f, `uploading ${file.name} ${Math.round(100 * f)}%`));
  stopPoll();
  $("progress-transcribe").hidden = true;
  if (!reply.ok) {
    showMessage((reply.json && reply.json.error) || `the server answered ${reply.status}`);
    $("result-transcribe").hidden = true;
    return;
  }
  const result = state.result = reply.json;
  state.buffers = {};
  $("dl-mid").href = result.files.mid;
  $("dl-csv").href = result.files.csv;
  $("dl-musicxml").href = result.files.musicxml;
  $("summary").textContent = result.silent ? `'${result.name}' is silent: no notes`
    : `${result.name}: ${result.notes.length} notes, ${result.duration_s.toFixed(1)} s`
      + (result.tempo_bpm ? `, ${result.tempo_bpm.toFixed(1)} BPM` : "") + `, drum map ${result.drum_map}`;
  $("result-transcribe").hidden = false;
  drawRoll();
  document.body.dataset.transcribed = String(result.notes.length);
  $("audition-state").textContent = "";
  file.arrayBuffer().then((data) => audioContext().decodeAudioData(data))
    .then((buffer) => { state.buffers.original = buffer; })
    .catch(() => { $("audition-state").textContent = "this browser cannot play the original's format"; });
}

const LANE_PX = 26, PX_PER_S_MAX = 120, LEFT_PX = 90, TOP_PX = 18;
function rollGeometry() {
  const r = state.result;
  const pxPerS = Math.max(10, Math.min(PX_PER_S_MAX, 30000 / Math.max(1, r.duration_s)));
  return { pxPerS, width: LEFT_PX + Math.ceil(r.duration_s * pxPerS) + 20, height: TOP_PX + LANE_PX * Math.max(1, r.lanes.length) + 4 };
}
function drawRoll(playhead_s) {
  const r = state.result;
  if (!r) return;
  const canvas = $("roll"), g = rollGeometry();
  if (canvas.width !== g.width || canvas.height !== g.height) { canvas.width = g.width; canvas.height = g.height; }
  const c = canvas.getContext("2d");
  const x = (t) => LEFT_PX + t * g.pxPerS;
  c.fillStyle = "#fff";
  c.fillRect(0, 0, g.width, g.height);
  r.lanes.forEach((lane, i) => {
    c.fillStyle = i % 2 ? "#f4f6f8" : "#fbfcfd";
    c.fillRect(LEFT_PX, TOP_PX + i * LANE_PX, g.width, LANE_PX);
  });
  c.strokeStyle = "#dde2e8"; c.lineWidth = 1;
  for (const t of r.beats_s) { c.beginPath(); c.moveTo(x(t) + .5, TOP_PX); c.lineTo(x(t) + .5, g.height); c.stroke(); }
  c.strokeStyle = "#7d8894"; c.fillStyle = "#44505c"; c.font = "11px system-ui";
  r.bars_s.forEach((t, i) => {
    c.beginPath(); c.moveTo(x(t) + .5, 2); c.lineTo(x(t) + .5, g.height); c.stroke();
    c.fillText(String(i + 1), x(t) + 3, 12);
  });
  const laneOf = new Map(r.lanes.map((l, i) => [l.note, i]));
  for (const n of r.notes) {
    const lane = laneOf.get(n.note);
    if (lane === undefined) continue;
    const h = Math.max(4, (LANE_PX - 6) * n.velocity / 127), y = TOP_PX + lane * LANE_PX + (LANE_PX - h) / 2;
    c.fillStyle = `hsl(${30 - 30 * n.velocity / 127}, 90%, ${68 - 28 * n.velocity / 127}%)`;
    c.fillRect(x(n.time_s) - 2, y, 5, h);
  }
  c.fillStyle = "#fff"; c.fillRect(0, 0, LEFT_PX, g.height);
  c.fillStyle = "#1d232b"; c.font = "12px system-ui";
  r.lanes.forEach((lane, i) => c.fillText(`${lane.drum} (${lane.note})`, 6, TOP_PX + i * LANE_PX + 17));
  if (playhead_s !== undefined) {
    c.strokeStyle = "#d32f2f"; c.lineWidth = 2;
    c.beginPath(); c.moveTo(x(playhead_s), 0); c.lineTo(x(playhead_s), g.height); c.stroke();
  }
}

async function auditionBuffer() {
  const key = `audition:${$("kit").value}:${$("preset").value}`;
  if (state.buffers[key]) return state.buffers[key];
  $("audition-state").textContent = `rendering through ${$("kit").value}, ${$("preset").value}...`;
  const form = new FormData();
  form.append("id", state.result.id);
  form.append("kit", $("kit").value);
  form.append("preset", $("preset").value);
  const response = await fetch("/api/audition", { method: "POST", body: form });
  if (!response.ok) { $("audition-state").textContent = ""; showMessage(await errorOf(response)); return null; }
  const buffer = await audioContext().decodeAudioData(await response.arrayBuffer());
  $("audition-state").textContent = "";
  return (state.buffers[key] = buffer);
}
function stopPlaying() {
  if (!state.playing) return;
  state.playing.sources.forEach((s) => { try { s.stop(); } catch (e) { /* already stopped */ } });
  state.playing = null;
  document.querySelectorAll("#result-transcribe button").forEach((b) => b.classList.remove("on"));
}
async function play(which, from_s) {
  stopPlaying();
  if (!state.result) return;
  const ac = audioContext(), parts = [];
  if (which !== "audition") {
    if (!state.buffers.original) { showMessage("the original is still being decoded, or this browser cannot play its format"); return; }
    parts.push([state.buffers.original, which === "both" ? Number($("mix").value) : 1]);
  }
  if (which !== "original") {
    const buffer = await auditionBuffer();
    if (!buffer) return;
    parts.push([buffer, which === "both" ? 1 - Number($("mix").value) : 1]);
  }
  const offset = from_s || 0, at = ac.currentTime + 0.05;
  const sources = parts.map(([buffer, gain]) => {
    const source = ac.createBufferSource(), node = ac.createGain();
    source.buffer = buffer; node.gain.value = gain;
    source.connect(node).connect(ac.destination);
    source.start(at, Math.min(offset, buffer.duration));
    return source;
  });
  const playing = state.playing = { sources, which, at, offset, end: Math.max(...parts.map(([b]) => b.duration)) };
  $("play-" + which).classList.add("on");
  const wrap = $("roll-wrap");
  const tick = () => {
    if (state.playing !== playing) { drawRoll(); return; }
    const t = playing.offset + Math.max(0, ac.currentTime - playing.at);
    if (t >= playing.end) { stopPlaying(); drawRoll(); return; }
    drawRoll(t);
    const px = LEFT_PX + t * rollGeometry().pxPerS;
    if (px > wrap.scrollLeft + wrap.clientWidth - 60 || px < wrap.scrollLeft) wrap.scrollLeft = px - 120;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
["original", "audition", "both"].forEach((w) => $("play-" + w).addEventListener("click", () => play(w)));
$("stop").addEventListener("click", () => { stopPlaying(); drawRoll(); });
$("roll").addEventListener("click", (e) => {
  if (!state.result) return;
  const t = (e.offsetX - LEFT_PX) / rollGeometry().pxPerS;
  if (t >= 0) play(state.playing ? state.playing.which : "original", t);
});
["kit", "preset"].forEach((id) => $(id).addEventListener("change", () => { if (state.playing && state.playing.which !== "original") play(state.playing.which); }));

// ---- generate -------------------------------------------------------------------------------------------------
function setUpGenerator(gen) {
  if (!gen.available) { $("generator-state").textContent = gen.reason; return; }
  $("generator").hidden = false;
  fillSelect($("gen-class"), gen.classes, gen.classes[0]);
  const [low, high] = gen.knob_range, box = $("knobs");
  for (let i = 0; i < gen.n_knobs; i++) {
    const label = document.createElement("label");
    label.innerHTML = `knob ${i + 1} <input type="range" class="knob" min="${low}" max="${high}" step="${(high - low) / 200}" value="${(low + high) / 2}"> <output></output>`;
    box.appendChild(label);
  }
  box.querySelectorAll("input").forEach((k) => k.addEventListener("input", soundChanged));
  ["gen-class", "gen-seed", "gen-length"].forEach((id) => $(id).addEventListener("change", soundChanged));
  soundChanged();
}
function knobValues() { return [...document.querySelectorAll("#knobs input")].map((k) => Number(k.value)); }
function generateUrl() {
  return `/api/generate?class=${encodeURIComponent($("gen-class").value)}&knobs=${knobValues().map((v) => v.toFixed(4)).join(",")}`
    + `&seed=${Math.max(0, Math.floor(Number($("gen-seed").value) || 0))}&length_s=${Number($("gen-length").value) || 1}`;
}
let pending = null, fetching = false;
function soundChanged() {
  document.querySelectorAll("#knobs label").forEach((l) => { l.querySelector("output").textContent = Number(l.querySelector("input").value).toFixed(2); });
  pending = generateUrl();
  if (!fetching) fetchSound();
}
async function fetchSound() {  // the latest knob setting wins; one request at a time
  fetching = true;
  while (pending) {
    const url = pending;
    pending = null;
    const response = await fetch(url);
    if (!response.ok) { showMessage(await errorOf(response)); continue; }
    const data = await response.arrayBuffer();
    const g = state.generate;
    g.wav = data; g.url = url;
    g.buffer = await audioContext().decodeAudioData(data.slice(0));
    let sum = 0;
    const bytes = new Uint8Array(data);
    for (let i = 0; i < bytes.length; i++) sum = (sum * 31 + bytes[i]) >>> 0;
    $("gen-sound").dataset.sound = sum.toString(16);
    $("gen-sound").textContent = `${$("gen-class").value}, ${g.buffer.duration.toFixed(2)} s (sound ${sum.toString(16)})`;
    drawWave(g.buffer);
    if (g.looping) loop();
  }
  fetching = false;
}
function drawWave(buffer) {  // the sound's envelope: the peak of each pixel's samples, up and down
  const canvas = $("gen-wave"), c = canvas.getContext("2d"), data = buffer.getChannelData(0);
  canvas.width = canvas.clientWidth || 800;
  const w = canvas.width, h = canvas.height, per = Math.max(1, Math.floor(data.length / w));
  c.fillStyle = "#fff"; c.fillRect(0, 0, w, h);
  c.fillStyle = "#f0a030";
  for (let x = 0; x < w; x++) {
    let peak = 0;
    for (let i = x * per; i < Math.min(data.length, (x + 1) * per); i++) peak = Math.max(peak, Math.abs(data[i]));
    c.fillRect(x, h / 2 - peak * h / 2, 1, Math.max(1, peak * h));
  }
}
function loop() {
  const g = state.generate;
  if (g.source) { try { g.source.stop(); } catch (e) { /* stopped */ } }
  if (!g.looping || !g.buffer) return;
  const source = audioContext().createBufferSource();
  source.buffer = g.buffer; source.loop = true;
  source.connect(audioContext().destination);
  source.start();
  g.source = source;
}
$("gen-loop").addEventListener("click", () => {
  const g = state.generate;
  g.looping = !g.looping;
  $("gen-loop").classList.toggle("on", g.looping);
  $("gen-loop").textContent = g.looping ? "Stop loop" : "Loop play";
  loop();
});
$("gen-save").addEventListener("click", () => {
  const g = state.generate;
  if (!g.wav) return;
  const name = `${$("gen-class").value}-${$("gen-seed").value}-${($("saved").children.length + 1)}.wav`;
  const url = URL.createObjectURL(new Blob([g.wav], { type: "audio/wav" }));
  const li = document.createElement("li");
  li.innerHTML = `<a href="${url}" download="${name}">${name}</a> <span class="hint">${g.url}</span>`;
  $("saved").appendChild(li);
  li.querySelector("a").click();
});
async function encode(file) {
  showMessage("");
  const form = new FormData();
  form.append("audio", file, file.name);
  const response = await fetch("/api/encode", { method: "POST", body: form });
  if (!response.ok) { showMessage(await errorOf(response)); return; }
  const { class: cls, knobs } = await response.json();
  $("gen-class").value = cls;
  document.querySelectorAll("#knobs input").forEach((k, i) => { k.value = knobs[i]; });
  showMessage(`knobs set from '${file.name}' (${cls})`, "info");
  soundChanged();
}
dropZone($("drop-generate"), (items) => items.length && encode(items[0].file));
$("file-generate").addEventListener("change", (e) => e.target.files.length && encode(e.target.files[0]));

// ---- sort -----------------------------------------------------------------------------------------------------
dropZone($("drop-sort"), sortFiles);
$("file-sort").addEventListener("change", (e) => sortFiles([...e.target.files].map((f) => ({ file: f, path: f.name }))));
$("folder-sort").addEventListener("change", (e) => sortFiles([...e.target.files].map((f) => ({ file: f, path: f.webkitRelativePath || f.name }))));

async function sortFiles(items) {
  showMessage("");
  if (state.info && !state.info.sort.available) { showMessage(state.info.sort.reason); return; }
  const audio = items.filter((i) => AUDIO_TYPES.some((s) => i.path.toLowerCase().endsWith(s)));
  if (!audio.length) { showMessage(`none of the ${items.length} files is audio (${AUDIO_TYPES.join(", ")})`); return; }
  const limit = state.info ? state.info.max_upload_mb : 200, bytes = audio.reduce((n, i) => n + i.file.size, 0);
  if (bytes > limit * 1024 * 1024) {
    showMessage(`the ${audio.length} files (${(bytes / 1e6).toFixed(0)} MB) are over the upload limit of ${limit} MB; sort them in parts`);
    return;
  }
  const job = newJob(), form = new FormData();
  audio.forEach((i) => form.append("files", i.file, i.path));
  form.append("min_confidence", $("min-confidence").value);
  form.append("job", job);
  setProgress("progress-sort", 0, `uploading ${audio.length} files`);
  const stopPoll = pollProgress(job, "progress-sort", `sorting ${audio.length} files`);
  const reply = await postForm("/api/sort", form, (f) => setProgress("progress-sort", f, `uploading ${audio.length} files ${Math.round(100 * f)}%`));
  stopPoll();
  $("progress-sort").hidden = true;
  if (!reply.ok) { showMessage((reply.json && reply.json.error) || `the server answered ${reply.status}`); return; }
  const body = $("sort-table").querySelector("tbody");
  body.innerHTML = "";
  for (const row of reply.json.rows) {
    const tr = document.createElement("tr");
    if (!row.class || !row.destination.startsWith(row.class + "/")) tr.className = "unsorted";
    for (const [text, cls] of [[row.file], [row.class || row.reason], [row.confidence.toFixed(2), "num"], [row.destination || row.reason]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  const rows = reply.json.rows, sorted = rows.filter((r) => r.class && r.destination.startsWith(r.class + "/"));
  const classes = new Set(sorted.map((r) => r.class));
  $("sort-summary").textContent = `${rows.length} files: ${sorted.length} sorted into ${classes.size} classes, `
    + `${rows.length - sorted.length} unsure`;
  $("dl-zip").href = reply.json.zip;
  $("result-sort").hidden = false;
  document.body.dataset.sorted = String(reply.json.rows.length);
}

start().catch((e) => showMessage(`the page could not start: ${e.message}`));
