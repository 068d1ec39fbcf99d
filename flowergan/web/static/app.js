// flowergan explorer: talks to the JSON API of flowergan/web/server.py and edit_api.py (same origin, no libraries).
// The view's state lives in the URL's hash (#seed=5&psi=0.7&...), so a copied link reopens the same view.
"use strict";

const $ = (id) => document.getElementById(id);
let INFO = null;
const MAX_SEED = 4294967295;

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new Error("cannot reach the server: is flowergan serve still running?");
  }
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const msg = (data && data.error) ? data.error
      : `the server answered ${resp.status}${resp.statusText ? " (" + resp.statusText + ")" : ""}`;
    throw new Error(msg);
  }
  return data;
}

const SEED_NAMES = { seed: "Seed", "mix-a": "Seed A", "mix-b": "Seed B", "edit-seed": "The start seed" };

function seedValue(id) {
  const text = $(id).value.trim();
  const v = Number(text);
  if (!Number.isInteger(v) || v < 0 || v > MAX_SEED) {
    throw new Error(`${SEED_NAMES[id] || id} ${JSON.stringify(text)} is not a seed: give a whole number in ` +
                    `[0, ${MAX_SEED}]`);
  }
  return v;
}

// "0-3,7" -> [0, 1, 2, 3, 7] (at most `max` seeds)
function parseSeeds(text, max, what) {
  const out = [];
  for (const part of String(text).split(",")) {
    const p = part.trim();
    if (!p) continue;
    const m = /^(\d+)\s*-\s*(\d+)$/.exec(p);
    if (m) {
      const lo = Number(m[1]), hi = Number(m[2]);
      if (hi < lo || hi > MAX_SEED) throw new Error(`${what}: bad range ${p}`);
      for (let s = lo; s <= hi && out.length <= max; s++) out.push(s);
    } else if (/^\d+$/.test(p) && Number(p) <= MAX_SEED) {
      out.push(Number(p));
    } else {
      throw new Error(`${what}: cannot read ${JSON.stringify(p)}; give seeds like 0-15 or 3,4,5`);
    }
  }
  if (!out.length) throw new Error(`${what}: give at least one seed`);
  if (out.length > max) throw new Error(`${what}: at most ${max} seeds`);
  return out;
}

function common() {
  const out = { psi: Number($("psi").value), noise_mode: $("noise").value };
  const cut = $("cutoff").value.trim();
  if (cut !== "") out.cutoff = Number(cut);
  if (INFO && INFO.c_dim > 0) out.class_idx = Number($("class").value);
  return out;
}

function pad4(n) { return String(n).padStart(4, "0"); }

function setImage(imgId, linkId, url, filename) {
  $(imgId).src = url;
  const a = $(linkId);
  a.href = url;
  if (filename) a.download = filename;
}

// A per-panel counter so that only the latest answer is shown.
const latest = { gen: 0, grid: 0, mix: 0, walk: 0, edit: 0, dirs: 0, proj: 0, file: 0 };

// Where each kind of request shows its errors, and the captions that describe its last image.
const PANELS = {
  gen: { section: "panel-generate", name: "Generate", captions: ["gen-caption"] },
  grid: { section: "panel-grid", name: "Seed grid", captions: ["grid-caption"] },
  mix: { section: "panel-mix", name: "Style mixing", captions: ["mix-caption"] },
  walk: { section: "panel-walk", name: "Latent walk", captions: ["walk-caption"],
          onError: () => playWalk(false) },  // the old walk stops, so its frame counter stays cleared
  file: { section: "panel-walk", name: "Latent walk", captions: [] },
  dirs: { section: "panel-edit", name: "Directions", captions: [] },
  edit: { section: "panel-edit", name: "Directions", captions: ["edit-caption"] },
  proj: { section: "panel-project", name: "Projection", captions: ["proj-caption"] },
};

function panelError(panel, message) {
  const box = $(PANELS[panel].section).querySelector(".panel-error");
  box.textContent = message || "";
  box.hidden = !message;
  $(PANELS[panel].section).classList.toggle("failed", !!message);
}

// The panel whose error the status line shows: other panels' progress does not hide it, the same panel's
// next request does. The error itself is shown in the panel, where its stale caption is cleared.
let errorPanel = null;

async function run(panel, label, fn) {
  const my = ++latest[panel];
  if (errorPanel === panel) errorPanel = null;
  const progress = (text) => { if (errorPanel === null) setStatus(text); };
  progress(`${label}…`);
  try {
    const t0 = performance.now();
    const result = await fn();
    if (my !== latest[panel]) return;  // a newer request superseded this one
    panelError(panel, "");
    result();
    progress(`${label}: ${Math.round(performance.now() - t0)} ms`);
  } catch (err) {
    if (my !== latest[panel]) return;
    const message = String((err && err.message) || err);
    errorPanel = panel;
    panelError(panel, message);
    if (PANELS[panel].onError) PANELS[panel].onError();
    for (const id of PANELS[panel].captions) $(id).textContent = "";
    setStatus(`${PANELS[panel].name}: ${message}`, true);
  }
}

// ---- the URL state ----------------------------------------------------------------------------
const STATE_INPUTS = {  // hash key -> input id
  seed: "seed", psi: "psi", cutoff: "cutoff", noise: "noise", class: "class", grid: "grid-seeds",
  mixa: "mix-a", mixb: "mix-b", mixs: "mix-styles", mixlo: "mix-lo", mixhi: "mix-hi",
  walk: "walk-seeds", frames: "walk-frames", space: "walk-space", eseed: "edit-seed",
};
let restoring = false;

function saveState() {
  if (restoring) return;
  const p = new URLSearchParams();
  for (const [key, id] of Object.entries(STATE_INPUTS)) {
    const v = $(id).value;
    if (v !== "" && v !== undefined) p.set(key, v);
  }
  if ($("walk-loop").checked) p.set("loop", "1");
  if (walkShown) p.set("walked", "1");
  const set = $("dir-set").value;
  if (set) p.set("set", set);
  const vals = sliderValues();
  const enc = Object.entries(vals).map(([k, v]) => `${k}:${v}`).join(",");
  if (enc) p.set("dirs", enc);
  history.replaceState(null, "", "#" + p.toString());
}

function readState() {
  const p = new URLSearchParams(location.hash.slice(1));
  const st = {};
  for (const [k, v] of p.entries()) st[k] = v;
  return st;
}

function applyState(st) {
  for (const [key, id] of Object.entries(STATE_INPUTS)) {
    if (st[key] === undefined) continue;
    const el = $(id);
    if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === st[key])) continue;
    el.value = st[key];
  }
  $("walk-loop").checked = st.loop === "1";
  $("psi-value").textContent = Number($("psi").value).toFixed(2);
  $("mix-custom").hidden = $("mix-styles").value !== "custom";
}

// ---- generate ---------------------------------------------------------------------------------
function generate() {
  return run("gen", "generate", async () => {
    const seed = seedValue("seed");
    const psi = Number($("psi").value);
    const data = await api("/api/generate", Object.assign({ seed }, common()));
    return () => {
      setImage("gen-img", "gen-download", data.images[0], `seed${pad4(seed)}.png`);
      $("gen-caption").textContent = `seed ${seed}, psi ${psi.toFixed(2)}, noise ${$("noise").value}`;
      document.body.dataset.genSeed = String(seed);
    };
  });
}

let genTimer = null;
function scheduleGenerate() {
  clearTimeout(genTimer);
  genTimer = setTimeout(generate, 120);
  saveState();
}

function stepSeed(delta) {
  const v = Math.min(MAX_SEED, Math.max(0, (Number($("seed").value) || 0) + delta));
  $("seed").value = String(v);
  scheduleGenerate();
}

// ---- seed grid --------------------------------------------------------------------------------
function grid() {
  return run("grid", "grid", async () => {
    const seeds = parseSeeds($("grid-seeds").value, INFO.limits.max_batch, "grid seeds");
    const body = Object.assign({ seeds, grid: true }, common());
    const data = await api("/api/generate", body);
    return () => {
      document.body.dataset.gridBody = JSON.stringify(body);
      setImage("grid-img", "grid-dl", data.grid, `grid-${seeds[0]}-${seeds[seeds.length - 1]}.png`);
      $("grid-caption").textContent = `${seeds.length} seeds`;
      saveState();
    };
  });
}

// ---- style mixing -----------------------------------------------------------------------------
function mixStyles() {
  const choice = $("mix-styles").value;
  if (choice !== "custom") return choice;
  const lo = Number($("mix-lo").value), hi = Number($("mix-hi").value);
  return `${lo}-${hi}`;
}

function mix() {
  return run("mix", "mix", async () => {
    const a = seedValue("mix-a"), b = seedValue("mix-b");
    const styles = mixStyles();
    const data = await api("/api/mix", Object.assign({ row_seed: a, col_seed: b, styles }, common()));
    return () => {
      setImage("mix-a-img", "mix-a-dl", data.row_image, `seed${pad4(a)}.png`);
      setImage("mix-b-img", "mix-b-dl", data.col_image, `seed${pad4(b)}.png`);
      setImage("mix-img", "mix-dl", data.mix_image, `mix-${a}-${b}-layers${data.styles.join("_")}.png`);
      const layers = data.styles.length ? `layers ${data.styles[0]}-${data.styles[data.styles.length - 1]}` : "no layers";
      $("mix-caption").textContent = `A with B's ${layers}`;
      saveState();
    };
  });
}

// ---- latent walk ------------------------------------------------------------------------------
let walkFrames = [];
let walkIndex = 0;
let walkTimer = null;
let walkShown = false;

function showWalkFrame(i) {
  walkIndex = i % walkFrames.length;
  setImage("walk-anim", "walk-dl", walkFrames[walkIndex], `walk-frame${String(walkIndex).padStart(3, "0")}.png`);
  $("walk-caption").textContent = `frame ${walkIndex + 1} / ${walkFrames.length}`;
}

function playWalk(on) {
  clearInterval(walkTimer);
  walkTimer = null;
  if (on && walkFrames.length > 1) {
    walkTimer = setInterval(() => showWalkFrame(walkIndex + 1), 125);
  }
  $("walk-play").textContent = walkTimer ? "pause" : "play";
}

function walkBody() {
  const seeds = parseSeeds($("walk-seeds").value, INFO.limits.max_walk_seeds, "walk seeds");
  if (seeds.length < 2) throw new Error("walk seeds: give at least 2 seeds, e.g. 3,4,5");
  return Object.assign({ seeds, frames: Number($("walk-frames").value), space: $("walk-space").value,
                         loop: $("walk-loop").checked }, common());
}

function walk() {
  return run("walk", "walk", async () => {
    const body = walkBody();
    const data = await api("/api/interpolate", body);
    return () => {
      walkFrames = data.frames;
      const strip = $("walk-strip");
      strip.replaceChildren();
      walkFrames.forEach((url, i) => {
        const link = document.createElement("a");
        link.href = url;
        link.download = `walk-${body.seeds.join("-")}-frame${String(i).padStart(3, "0")}.png`;
        const img = document.createElement("img");
        img.src = url;
        img.alt = `frame ${i + 1}`;
        link.appendChild(img);
        strip.appendChild(link);
      });
      $("walk-play").disabled = walkFrames.length < 2;
      $("walk-gif").disabled = $("walk-mp4").disabled = false;
      walkShown = true;
      showWalkFrame(0);
      playWalk(true);
      saveState();
    };
  });
}

function downloadWalk(format) {
  return run("file", `walk ${format.toUpperCase()}`, async () => {
    const data = await api("/api/walk-video", Object.assign(walkBody(), { format }));
    return () => {
      const a = $("walk-file");
      a.href = data.data;
      a.download = data.filename;
      a.dataset.format = data.format;
      a.click();
    };
  });
}

// ---- directions -------------------------------------------------------------------------------
let SETS = {};  // id -> set info

function addSet(info, select = false) {
  SETS[info.id] = info;
  const sel = $("dir-set");
  if (![...sel.options].some((o) => o.value === info.id)) {
    sel.add(new Option(`${info.id} (${info.method}, ws ${info.layers[0]}-${info.layers[info.layers.length - 1]}` +
                       `${info.saved ? ", saved" : ""})`, info.id));
  }
  if (select) sel.value = info.id;
}

function buildSliders(values = {}) {
  const box = $("sliders");
  box.replaceChildren();
  const info = SETS[$("dir-set").value];
  if (!info) return;
  const lim = INFO.edit_limits.strength_max;
  info.names.forEach((name, i) => {
    const label = document.createElement("label");
    label.className = "slider";
    const range = document.createElement("input");
    Object.assign(range, { type: "range", min: String(-Math.min(3, lim)), max: String(Math.min(3, lim)),
                           step: "0.1", value: String(values[i] || 0) });
    range.id = `dir-${i}`;
    range.dataset.index = String(i);
    const out = document.createElement("output");
    out.id = `dir-${i}-value`;
    out.textContent = Number(range.value).toFixed(1);
    range.addEventListener("input", () => { out.textContent = Number(range.value).toFixed(1); scheduleEdit(); });
    label.append(`${i}: ${name} `, range, out);
    box.appendChild(label);
  });
}

function sliderValues() {
  const out = {};
  for (const r of document.querySelectorAll("#sliders input[type=range]")) {
    const v = Number(r.value);
    if (v !== 0) out[r.dataset.index] = Math.round(v * 10) / 10;
  }
  return out;
}

async function computeSet(method, layers, num) {
  const info = await api("/api/directions", { method, layers, num });
  addSet(info, true);
  return info;
}

function computeDirections() {
  return run("dirs", "directions", async () => {
    await computeSet($("dir-method").value, $("dir-layers").value.trim() || "all", Number($("dir-num").value));
    return () => { buildSliders(); saveState(); edit(); };
  });
}

function edit() {
  const set = $("dir-set").value;
  if (!set) return Promise.resolve();
  return run("edit", "edit", async () => {
    const values = sliderValues();
    const body = Object.assign({ set, values }, common());
    const start = $("edit-start").value;
    if (start === "seed") body.seed = seedValue("edit-seed");
    else body.projection = start;
    const data = await api("/api/edit", body);
    return () => {
      const desc = Object.entries(values).map(([k, v]) => `${k}${v > 0 ? "+" : ""}${v}`).join("_") || "none";
      const what = start === "seed" ? `seed${pad4(body.seed)}` : "projection";
      setImage("edit-img", "edit-dl", data.image, `edit-${what}-${set}-${desc}.png`);
      $("edit-caption").textContent = `${what}, ${set}: ${desc}`;
      document.body.dataset.editState = JSON.stringify(values);
      document.body.dataset.editBody = JSON.stringify(body);
      saveState();
    };
  });
}

let editTimer = null;
function scheduleEdit() {
  clearTimeout(editTimer);
  editTimer = setTimeout(edit, 120);
  saveState();
}

// ---- projection -------------------------------------------------------------------------------
function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error("cannot read the photo"));
    r.readAsDataURL(file);
  });
}

function project() {
  const my = latest.proj + 1;  // the counter run() is about to take
  return run("proj", "projection", async () => {
    const file = $("proj-file").files[0];
    if (!file) throw new Error("choose a photo (PNG or JPEG) first");
    const image = await readFile(file);
    const body = { image, steps: Number($("proj-steps").value), space: $("proj-space").value };
    if (INFO.c_dim > 0) body.class_idx = Number($("class").value);
    const job = await api("/api/project", body);
    const bar = $("proj-progress");
    bar.max = job.steps;
    for (;;) {
      const st = await api(`/api/project/${job.job}`);
      if (my !== latest.proj) return () => {};  // a newer upload took over
      bar.value = st.step;
      $("proj-caption").textContent = `step ${st.step} / ${st.steps}`;
      if (st.target && $("proj-target").getAttribute("src") !== st.target) $("proj-target").src = st.target;
      if (st.preview && !st.done) $("proj-img").src = st.preview;
      if (st.done) {
        if (st.error) throw new Error(`projection failed: ${st.error}`);
        return () => {
          $("proj-target").src = st.target;
          setImage("proj-img", "proj-dl", st.image, "projection.png");
          $("proj-caption").textContent = `done: ${st.steps} steps, PSNR ${st.psnr} dB (${st.loss})`;
          const sel = $("edit-start");
          sel.add(new Option(`projection ${sel.options.length}`, st.projection));
          sel.value = st.projection;
          document.body.dataset.projection = st.projection;
          edit();
        };
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  });
}

// ---- setup ------------------------------------------------------------------------------------
// One request after another: the server runs generation on one worker behind a short queue.
async function refreshAll() {
  saveState();
  await generate();
  await mix();
  if ($("grid-img").getAttribute("src")) await grid();
  if (walkShown) await walk();
  await edit();
}

async function init() {
  try {
    INFO = await api("/api/info");
  } catch (err) {
    setStatus(`cannot reach the server: ${err.message}`, true);
    return;
  }
  $("model-info").textContent =
    `${INFO.model}: ${INFO.resolution}×${INFO.resolution}, z ${INFO.z_dim}, w ${INFO.w_dim}, ` +
    `${INFO.num_ws} ws${INFO.c_dim ? `, ${INFO.c_dim} classes` : ""}`;
  if (INFO.c_dim > 0) {
    const sel = $("class");
    for (let i = 0; i < INFO.c_dim; i++) {
      const name = INFO.class_names ? `${i}: ${INFO.class_names[i]}` : String(i);
      sel.add(new Option(name, String(i)));
    }
    $("class-label").hidden = false;
  }
  for (const opt of $("mix-styles").options) {
    const r = INFO.style_ranges[opt.value];
    if (r) opt.textContent = r.length ? `${opt.value} (${r[0]}-${r[r.length - 1]})` : `${opt.value} (none)`;
  }
  $("mix-lo").max = $("mix-hi").max = String(INFO.num_ws - 1);
  $("cutoff").max = String(INFO.num_ws);
  $("walk-frames").max = String(INFO.limits.max_frames - 1);
  $("psi").min = String(INFO.limits.psi_min);
  $("psi").max = String(INFO.limits.psi_max);
  $("proj-steps").max = String(INFO.edit_limits.max_project_steps);
  $("dir-num").max = String(INFO.edit_limits.max_num);
  for (const m of INFO.methods) $("dir-method").add(new Option(m, m));
  for (const s of INFO.direction_sets) addSet(s);

  // restore the view from the URL before the first render
  const st = readState();
  restoring = true;
  applyState(st);
  if (st.set && !SETS[st.set]) {
    const m = /^(sefa|pca|class)-(.+)-(\d+)$/.exec(st.set);
    if (m) {
      try { await computeSet(m[1], m[2], Number(m[3])); } catch (err) { setStatus(String(err.message), true); }
    }
  }
  if (st.set && SETS[st.set]) $("dir-set").value = st.set;
  const values = {};
  for (const kv of (st.dirs || "").split(",")) {
    const [k, v] = kv.split(":");
    if (k !== undefined && v !== undefined && /^\d+$/.test(k)) values[k] = Number(v);
  }
  buildSliders(values);
  restoring = false;

  $("seed").addEventListener("input", scheduleGenerate);
  $("seed").addEventListener("change", scheduleGenerate);
  $("seed-prev").addEventListener("click", () => stepSeed(-1));
  $("seed-next").addEventListener("click", () => stepSeed(1));
  $("seed-random").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 100000));
    scheduleGenerate();
  });
  let psiTimer = null;
  $("psi").addEventListener("input", () => {
    $("psi-value").textContent = Number($("psi").value).toFixed(2);
    clearTimeout(psiTimer);
    psiTimer = setTimeout(refreshAll, 120);
  });
  for (const id of ["noise", "class", "cutoff"]) $(id).addEventListener("change", refreshAll);
  $("mix-styles").addEventListener("change", () => {
    $("mix-custom").hidden = $("mix-styles").value !== "custom";
    mix();
  });
  $("mix-go").addEventListener("click", mix);
  $("grid-go").addEventListener("click", grid);
  $("walk-go").addEventListener("click", walk);
  $("walk-play").addEventListener("click", () => playWalk(walkTimer === null));
  $("walk-gif").addEventListener("click", () => downloadWalk("gif"));
  $("walk-mp4").addEventListener("click", () => downloadWalk("mp4"));
  $("dir-compute").addEventListener("click", computeDirections);
  $("dir-set").addEventListener("change", () => { buildSliders(); saveState(); edit(); });
  $("edit-seed").addEventListener("change", scheduleEdit);
  $("edit-start").addEventListener("change", scheduleEdit);
  $("edit-reset").addEventListener("click", () => { buildSliders(); scheduleEdit(); });
  $("proj-go").addEventListener("click", project);
  $("share").addEventListener("click", async () => {
    saveState();
    try { await navigator.clipboard.writeText(location.href); setStatus("link copied"); }
    catch (e) { setStatus(`link: ${location.href}`); }
  });

  // every panel renders on first load (one request after another): no empty image boxes
  await generate();
  await mix();
  await grid();
  await walk();
  if (!$("dir-set").value) {
    await run("dirs", "directions", async () => {
      const num = Math.min(8, INFO.edit_limits.max_num);
      await computeSet(INFO.methods.includes("sefa") ? "sefa" : INFO.methods[0], "all", num);
      return () => buildSliders();
    });
  }
  await edit();
  document.body.dataset.ready = "1";
  saveState();
}

document.addEventListener("DOMContentLoaded", init);
