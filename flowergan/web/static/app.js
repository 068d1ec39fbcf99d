// flowergan explorer: talks to the JSON API of flowergan/web/server.py (same origin, no libraries).
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
  const resp = await fetch(path, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const msg = (data && data.error) ? data.error : `HTTP ${resp.status}`;
    throw new Error(msg);
  }
  return data;
}

function seedValue(id) {
  const v = Number($(id).value);
  if (!Number.isInteger(v) || v < 0 || v > MAX_SEED) {
    throw new Error(`${id}: the seed must be an integer in [0, ${MAX_SEED}]`);
  }
  return v;
}

function common() {
  const out = { psi: Number($("psi").value), noise_mode: $("noise").value };
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
const latest = { gen: 0, mix: 0, walk: 0 };

async function run(panel, label, fn) {
  const my = ++latest[panel];
  setStatus(`${label}…`);
  try {
    const t0 = performance.now();
    const result = await fn();
    if (my !== latest[panel]) return;  // a newer request superseded this one
    result();
    setStatus(`${label}: ${Math.round(performance.now() - t0)} ms`);
  } catch (err) {
    if (my === latest[panel]) setStatus(String(err.message || err), true);
  }
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
}

function stepSeed(delta) {
  const v = Math.min(MAX_SEED, Math.max(0, (Number($("seed").value) || 0) + delta));
  $("seed").value = String(v);
  scheduleGenerate();
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
    };
  });
}

// ---- latent walk ------------------------------------------------------------------------------
let walkFrames = [];
let walkIndex = 0;
let walkTimer = null;

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

function walk() {
  return run("walk", "walk", async () => {
    const a = seedValue("walk-a"), b = seedValue("walk-b");
    const frames = Number($("walk-frames").value);
    const body = Object.assign({ seeds: [a, b], frames, space: $("walk-space").value }, common());
    const data = await api("/api/interpolate", body);
    return () => {
      walkFrames = data.frames;
      const strip = $("walk-strip");
      strip.replaceChildren();
      walkFrames.forEach((url, i) => {
        const link = document.createElement("a");
        link.href = url;
        link.download = `walk-${a}-${b}-frame${String(i).padStart(3, "0")}.png`;
        const img = document.createElement("img");
        img.src = url;
        img.alt = `frame ${i + 1}`;
        link.appendChild(img);
        strip.appendChild(link);
      });
      $("walk-play").disabled = walkFrames.length < 2;
      showWalkFrame(0);
      playWalk(true);
    };
  });
}

// ---- setup ------------------------------------------------------------------------------------
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
    for (let i = 0; i < INFO.c_dim; i++) sel.add(new Option(String(i), String(i)));
    $("class-label").hidden = false;
  }
  for (const opt of $("mix-styles").options) {
    const r = INFO.style_ranges[opt.value];
    if (r) opt.textContent = r.length ? `${opt.value} (${r[0]}-${r[r.length - 1]})` : `${opt.value} (none)`;
  }
  $("mix-lo").max = $("mix-hi").max = String(INFO.num_ws - 1);
  $("walk-frames").max = String(INFO.limits.max_frames - 1);
  $("psi").min = String(INFO.limits.psi_min);
  $("psi").max = String(INFO.limits.psi_max);

  $("seed").addEventListener("input", scheduleGenerate);
  $("seed").addEventListener("change", scheduleGenerate);
  $("seed-prev").addEventListener("click", () => stepSeed(-1));
  $("seed-next").addEventListener("click", () => stepSeed(1));
  $("seed-random").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 100000));
    scheduleGenerate();
  });
  $("psi").addEventListener("input", () => {
    $("psi-value").textContent = Number($("psi").value).toFixed(2);
    scheduleGenerate();
  });
  for (const id of ["noise", "class"]) $(id).addEventListener("change", () => { scheduleGenerate(); mix(); });
  $("mix-styles").addEventListener("change", () => {
    $("mix-custom").hidden = $("mix-styles").value !== "custom";
    mix();
  });
  $("mix-go").addEventListener("click", mix);
  $("walk-go").addEventListener("click", walk);
  $("walk-play").addEventListener("click", () => playWalk(walkTimer === null));

  await generate();
  await mix();
}

document.addEventListener("DOMContentLoaded", init);
