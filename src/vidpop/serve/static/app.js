/* vidpop web page: calls the REST API of the same app; no build step, no dependencies. */
"use strict";

const $ = (id) => document.getElementById(id);
const compact = new Intl.NumberFormat("en", { notation: "compact", maximumSignificantDigits: 3 });
const plain = new Intl.NumberFormat("en", { maximumSignificantDigits: 4 });
let uploadLimitMb = null; // from /models: refuse oversize files before uploading them

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/* ---------------------------------------------------------------- errors and busy state */
function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  const box = $("error");
  box.textContent = "";
  box.hidden = true;
}

function setBusy(button, status, text) {
  button.disabled = Boolean(text);
  status.textContent = text || "";
  status.classList.toggle("busy", Boolean(text));
  button.closest("form").setAttribute("aria-busy", text ? "true" : "false");
}

async function callApi(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error(`The server could not be reached (${err.message}).`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    let detail = body && body.detail !== undefined ? body.detail : response.statusText;
    if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    throw new Error(`${detail} (HTTP ${response.status})`);
  }
  return body;
}

/* ---------------------------------------------------------------- tabs (keyboard: arrows, Home, End) */
function setupTabs() {
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  const select = (tab, focus) => {
    for (const other of tabs) {
      const chosen = other === tab;
      other.setAttribute("aria-selected", String(chosen));
      other.tabIndex = chosen ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !chosen;
    }
    if (focus) tab.focus();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
    });
  });
}

/* ---------------------------------------------------------------- predicted targets with interval bars */
function decadeLabel(power) {
  return power === 0 ? "0" : compact.format(10 ** power);
}

function countAxis(targets) {
  const logs = targets.flatMap((t) => [t.lower, t.upper, t.value]).map((v) => Math.log10(1 + Math.max(0, v)));
  let lo = Math.floor(Math.min(...logs));
  let hi = Math.ceil(Math.max(...logs));
  if (hi <= lo) hi = lo + 1;
  const step = Math.max(1, Math.ceil((hi - lo) / 6));
  const ticks = [];
  for (let p = lo; p <= hi; p += step) ticks.push({ value: 10 ** p - 1, label: decadeLabel(p) });
  return { pos: (v) => ((Math.log10(1 + Math.max(0, v)) - lo) / (hi - lo)) * 100, ticks, kind: "log" };
}

function linearAxis(target) {
  let lo = Math.min(target.lower, target.value);
  let hi = Math.max(target.upper, target.value);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.1;
  lo -= pad; hi += pad;
  const ticks = [0, 0.5, 1].map((f) => ({ value: lo + f * (hi - lo), label: plain.format(lo + f * (hi - lo)) }));
  return { pos: (v) => ((v - lo) / (hi - lo)) * 100, ticks, kind: "linear" };
}

function intervalBar(target, axis) {
  const clamp = (x) => Math.min(100, Math.max(0, x));
  const left = clamp(axis.pos(target.lower));
  const right = clamp(axis.pos(target.upper));
  const level = Math.round((target.level || 0.95) * 100);
  const bar = el("div", {
    class: "interval-bar",
    role: "img",
    "aria-label": `${target.name}: predicted ${plain.format(target.value)}, ${level}% interval ` +
      `${plain.format(target.lower)} to ${plain.format(target.upper)} (${axis.kind} scale)`,
  });
  bar.append(el("div", { class: "interval-track" }));
  bar.append(el("div", { class: "interval-range", style: { left: `${left}%`, width: `${Math.max(0, right - left)}%` } }));
  bar.append(el("div", { class: "interval-point", style: { left: `${clamp(axis.pos(target.value))}%` } }));
  for (const tick of axis.ticks) {
    const at = clamp(axis.pos(tick.value));
    bar.append(el("span", { class: "interval-tick", style: { left: `${at}%` }, "aria-hidden": "true" }));
    bar.append(el("span", { class: "interval-tick-label", style: { left: `${at}%` }, "aria-hidden": "true",
      text: tick.label }));
  }
  return bar;
}

function renderTargets(targets) {
  const box = $("targets");
  box.replaceChildren();
  if (!targets.length) {
    box.append(el("p", { class: "hint", text: "No count model in the bundle: no predicted views." }));
    return;
  }
  const counts = targets.filter((t) => t.scale === "count");
  const sharedAxis = counts.length ? countAxis(counts) : null;
  for (const t of targets) {
    const axis = t.scale === "count" ? sharedAxis : linearAxis(t);
    const level = Math.round((t.level || 0.95) * 100);
    const fmt = t.scale === "count" ? compact : plain;
    box.append(el("div", { class: "target" },
      el("div", { class: "target-head" },
        el("span", { class: "target-name", text: t.name }),
        el("span", { class: "target-value", text: fmt.format(t.value) }),
        el("span", { class: "target-range",
          text: `${level}% interval: ${fmt.format(t.lower)} – ${fmt.format(t.upper)}` + (t.model ? ` · ${t.model}` : "") })),
      intervalBar(t, axis)));
  }
}

function renderPrediction(data) {
  const by = data.served_by;
  const best = by && by.best_on_validation;
  const served = by ? ` Served by ${by.model} (${by.kind}${best ? `, best on validation: ${best.candidate}` : ""}).` : "";
  $("verdict").textContent = data.verdict ? `Verdict: ${data.verdict}.${served}` : "";
  $("verdict").hidden = !data.verdict;
  $("context").textContent = data.context ? `In context: ${data.context}.` : "";
  $("context").hidden = !data.context;
  $("effects").replaceChildren(...(data.effects || []).map((e) => el("li", { text: e })));
  renderTargets(data.targets || []);
  const cls = data.popularity_class;
  $("class-fact").hidden = !cls;
  if (cls) {
    $("class-value").textContent = cls.name;
    $("class-detail").textContent = `class ${cls.label + 1} of ${cls.n_classes} · ${cls.model}: ${cls.method}`;
    const old = $("class-fact").querySelector(".class-probs");
    if (old) old.remove();
    if (cls.probabilities) {
      const probs = el("div", { class: "class-probs", role: "img",
        "aria-label": "class probabilities " + cls.probabilities.map((p) => `${Math.round(p * 100)}%`).join(", ") });
      cls.probabilities.forEach((p, i) => probs.append(el("span", {
        class: i === cls.label ? "chosen" : "", style: { height: `${Math.max(4, p * 100)}%` } })));
      $("class-fact").append(probs);
    }
  }
  const pp = data.p_popular;
  $("ppop-fact").hidden = !pp;
  if (pp) {
    $("ppop-value").textContent = `${Math.round(pp.value * 100)}%`;
    $("ppop-meter").style.width = `${pp.value * 100}%`;
    $("ppop-detail").textContent = `${pp.model}: ${pp.definition || ""}`;
  }
  $("opinions").replaceChildren(...(data.second_opinions || []).map((o) => {
    const what = o.kind === "p_popular" ? `P(popular) ${Math.round(o.value * 100)}%` : `class ${o.label + 1} (${o.name})`;
    const agree = o.agrees === true ? "agrees" : o.agrees === false ? "disagrees" : "";
    return el("li", { text: `Second opinion — ${o.model}: ${what}${agree ? ", " + agree : ""} ` +
      `(${o.definition || o.method || ""})` });
  }));
  const ex = data.experts;
  if (ex) {
    const shares = Object.entries(ex).filter(([k]) => k !== "model")
      .map(([k, v]) => `${k} ${Math.round(v * 100)}%`).join(", ");
    $("experts").textContent = `What the interval rests on (precision share, ${ex.model}): ${shares}.`;
  } else {
    $("experts").textContent = "";
  }
  $("notes").replaceChildren(...(data.notes || []).map((n) => el("li", { text: n })));
  $("prediction").hidden = false;
}

function renderWhatIf(wi) {
  $("what-if").hidden = !wi;
  if (!wi) return;
  const level = Math.round((wi.ratio.level || 0.95) * 100);
  const times = (x) => `×${x.toFixed(2)}`;
  $("what-if-summary").textContent = `Title 1 vs title 2: ${wi.target} ${times(wi.ratio.value)} ` +
    `(${level}% interval ${times(wi.ratio.lower)} – ${times(wi.ratio.upper)}; ${wi.model}): ${wi.reading}`;
  $("what-if-target").textContent = wi.target;
  $("what-if-rows").replaceChildren(...wi.predictions.map((p, i) => el("tr", {},
    el("td", { text: `${i + 1}. ${p.title}` }),
    el("td", { class: "num", text: compact.format(p.value) }),
    el("td", { class: "num", text: `${compact.format(p.lower)} – ${compact.format(p.upper)}` }))));
  const words = wi.words || [];
  const maxBeta = Math.max(...words.map((w) => w.beta), 1e-9);
  const line = $("what-if-words");
  line.replaceChildren();
  for (const w of words) {
    const label = `${w.word} (title ${w.title}): importance ${(w.beta * 100).toFixed(1)}%`;
    line.append(el("span", { class: "word", title: label, "aria-label": label,
      style: { backgroundColor: `rgba(230, 120, 0, ${(0.08 + 0.72 * (w.beta / maxBeta)).toFixed(3)})` },
      text: `${w.word} ·${w.title}` }), " ");
  }
  if (!words.length) {
    line.append(el("span", { class: "hint", text: wi.word_model ? "The titles have the same words."
      : "No attention model in the bundle to weigh the words." }));
  }
  $("what-if-method").textContent = `${wi.method}.` + (wi.word_model ? ` Word weights from ${wi.word_model}.` : "") +
    (wi.note ? ` Note: ${wi.note}.` : "");
}

/* ---------------------------------------------------------------- explanation: frames and words */
function renderExplanation(data) {
  const frames = data.frames || [];
  // α that never learned (or is uniform on this clip) says nothing: size frames by Grad-CAM evidence instead
  const alphaNote = (data.frame_attention && data.frame_attention.note) || "";
  const score = (f) => (alphaNote ? Math.max(f.gradcam_evidence || 0, 0) : f.alpha);
  const maxScore = Math.max(...frames.map(score), 1e-9);
  $("alpha-note").textContent = alphaNote;
  $("alpha-note").hidden = !alphaNote;
  const strip = $("frames");
  strip.replaceChildren();
  for (const f of frames) {
    const weight = score(f) / maxScore;
    const pct = alphaNote ? `Grad-CAM evidence ${(weight * 100).toFixed(0)}% of the top frame`
      : `${(f.alpha * 100).toFixed(1)}%`;
    const figure = el("figure", {
      class: f.index === data.top_frame ? "frame top" : "frame",
      style: { width: `${Math.round(56 + 84 * weight)}px`, opacity: String(0.45 + 0.55 * weight) },
    },
    el("img", { src: f.overlay_url, alt: `Frame ${f.index + 1} at ${f.timestamp.toFixed(1)} s: Grad-CAM overlay, ` +
      `${alphaNote ? "" : "attention "}${pct}${f.index === data.top_frame ? " (most important frame)" : ""}`,
      loading: "eager" }),
    el("div", { class: "alpha-bar", "aria-hidden": "true" }, el("span", { style: { width: `${weight * 100}%` } })),
    el("figcaption", { text: alphaNote ? `${f.timestamp.toFixed(1)} s · evidence ${(weight * 100).toFixed(0)}%`
      : `${f.timestamp.toFixed(1)} s · α ${pct}` }));
    strip.append(figure);
  }
  if (!frames.length) strip.append(el("p", { class: "hint", text: "No frames (the model reads titles only)." }));

  const words = data.words || [];
  const maxBeta = Math.max(...words.map((w) => w.beta), 1e-9);
  const line = $("words");
  line.replaceChildren();
  for (const w of words) {
    const strength = w.beta / maxBeta;
    const label = `${w.word}: importance ${(w.beta * 100).toFixed(1)}%${w.in_vocab ? "" : " (unknown word)"}`;
    line.append(el("span", {
      class: w.in_vocab ? "word" : "word oov",
      title: label,
      "aria-label": label,
      style: { backgroundColor: `rgba(230, 120, 0, ${(0.08 + 0.72 * strength).toFixed(3)})` },
      text: w.word,
    }), " ");
  }
  if (!words.length) line.append(el("span", { class: "hint", text: "No title words to weigh." }));

  $("explain-note").textContent = data.note || "";
  const figure = $("explain-figure");
  if (data.urls && data.urls.explanation) {
    figure.href = data.urls.explanation;
    figure.hidden = false;
  } else {
    figure.hidden = true;
  }
  $("explanation").hidden = false;
}

/* ---------------------------------------------------------------- predict form: one upload, with progress */
function postWithProgress(url, body, onProgress) {
  // fetch() cannot report upload progress; XMLHttpRequest can
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("error", () => reject(new Error("The server could not be reached.")));
    xhr.addEventListener("load", () => {
      const data = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) { resolve(data); return; }
      let detail = data && data.detail !== undefined ? data.detail : xhr.statusText;
      if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
      reject(new Error(`${detail} (HTTP ${xhr.status})`));
    });
    xhr.send(body);
  });
}

let lastAnswer = null;
function offerDownload(answer) {
  lastAnswer = answer;
  const link = $("download-json");
  if (link.dataset.url) URL.revokeObjectURL(link.dataset.url);
  const url = URL.createObjectURL(new Blob([JSON.stringify(answer, null, 1)], { type: "application/json" }));
  link.href = url;
  link.dataset.url = url;
}

function setupPredict() {
  const form = $("predict-form");
  const button = $("predict-button");
  const status = $("predict-status");
  const bar = $("upload-progress");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    $("prediction").hidden = true;
    $("explanation").hidden = true;
    $("what-if").hidden = true;
    const hasMedia = $("video").files.length > 0 || $("cover").files.length > 0;
    if (!hasMedia && !$("title").value.trim()) {
      showError("Give a video, a cover or a title.");
      return;
    }
    if ($("compare-title").value.trim() && !$("title").value.trim()) {
      showError("To compare titles, type the first title too.");
      return;
    }
    const bytes = [...$("video").files, ...$("cover").files].reduce((sum, f) => sum + f.size, 0);
    if (uploadLimitMb && bytes > uploadLimitMb * 2 ** 20) {
      showError(`The files are ${(bytes / 2 ** 20).toFixed(1)} MB; the server accepts at most ${uploadLimitMb} MB.`);
      return;
    }
    const body = new FormData(form);
    try {
      setBusy(button, status, hasMedia ? "Uploading…" : "Predicting…");
      bar.hidden = !hasMedia;
      bar.value = 0;
      const data = await postWithProgress("/analyze", body, (share) => {
        bar.value = Math.round(share * 100);
        if (share < 1) status.textContent = `Uploading… ${Math.round(share * 100)}%`;
        else status.textContent = hasMedia ? "Predicting and explaining (Grad-CAM over the frames)…" : "Predicting…";
      });
      renderPrediction(data.prediction);
      renderWhatIf(data.prediction.what_if);
      if (data.explanation) renderExplanation(data.explanation);
      offerDownload(data);
      setBusy(button, status, "");
      bar.hidden = true;
      status.textContent = "Done.";
    } catch (err) {
      setBusy(button, status, "");
      bar.hidden = true;
      showError(err.message);
    }
  });
}

/* ---------------------------------------------------------------- recommend form */
function coverFor(item) {
  // only real covers: a card without one is text only (10 of 19,738 MicroLens videos have a cover)
  if (!item.has_cover) return null;
  const img = el("img", { class: "rec-cover", src: `/covers/${encodeURIComponent(item.video_id)}`,
    alt: `Cover of “${item.title}”` });
  img.addEventListener("error", () => img.remove());
  return img;
}

function renderRecommendations(data) {
  const list = $("rec-list");
  list.replaceChildren(...(data.items || []).map((item) => el("li", { class: item.has_cover ? "rec-item" : "rec-item no-cover" },
    coverFor(item),
    el("div", { class: "rec-body" },
      el("span", { class: "rec-rank", text: `#${item.rank}` }),
      el("p", { class: "rec-title", text: item.title || "(untitled)" }),
      item.because ? el("p", { class: "rec-because", text: item.because }) : null,
      el("span", { class: "rec-meta", text: `video ${item.video_id}` })))));
  if (!data.items || !data.items.length) list.append(el("li", { class: "hint", text: "Nothing to recommend." }));
  $("rec-heading").textContent = `Recommended videos (${data.model})`;
  $("rec-notes").replaceChildren(...(data.notes || []).map((n) => el("li", { text: n })));
  $("recommendations").hidden = false;
}

function setupRecommend() {
  const form = $("recommend-form");
  const button = $("recommend-button");
  const status = $("recommend-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const user = $("rec-user").value.trim();
    const history = $("rec-history").value.split(/[\s,;]+/).filter(Boolean);
    const text = $("rec-text").value.trim();
    const k = Number.parseInt($("rec-k").value, 10) || 10;
    const filled = [user && "user id", history.length && "watched video ids", text && "interests"].filter(Boolean);
    if (!filled.length) {
      showError("Give a user id, some watched video ids, or some text.");
      return;
    }
    if (filled.length > 1) {
      showError(`Fill only one field: you filled ${filled.join(" and ")}. Clear the others and try again.`);
      return;
    }
    try {
      setBusy(button, status, "Finding videos…");
      const data = user
        ? await callApi(`/recommend/${encodeURIComponent(user)}?k=${k}`)
        : await callApi("/recommend", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify(history.length ? { history, k } : { text, k }) });
      renderRecommendations(data);
      setBusy(button, status, "");
      status.textContent = `${data.items.length} videos.`;
    } catch (err) {
      setBusy(button, status, "");
      showError(err.message);
    }
  });
}

async function showModels() {
  try {
    const data = await callApi("/models");
    uploadLimitMb = data.upload_limit_mb;
    $("models-info").textContent = "Models: " + data.models
      .map((m) => `${m.name} (${m.model}: ${m.roles.join(", ")}${m.trained_on.length ? "; " + m.trained_on.join(", ") : ""})`)
      .join(" · ");
  } catch (err) {
    $("models-info").textContent = `Models could not be listed: ${err.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupTabs();
  setupPredict();
  setupRecommend();
  showModels();
});
