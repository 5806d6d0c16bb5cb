// Explorer of the page written by steps_py/memvis/report.py (inlined there; plain JS, no library).
//
// Data: the JSON in <script id="memvis-data"> (see explorer_data in report_data.py). Values are int8 codes
// (|code| <= codec.max_code, set by --bits):
// linear  value = offset + code * step;  log  value = sign(code) * knee * expm1(|code| * step).
// Blobs are base64 of zlib-deflated bytes; utterance traces are unit-major [H, T] with deltas along T.
// A page may hold several models (the run page: one <script class="memvis-model"> each, and a model selector).
// Open the page with #selftest to run runSelfTest(): it exercises the explorer (of every model) and, on the run page,
// the claim links, and writes "ok ..." or "error ..." into <div id="selftest-result">.
"use strict";

const GUTTER = 60;         // px left of every track for labels; frame t starts at x = GUTTER + t * zoom
const SPEC_HEIGHT = 80;    // px of the spectrogram track
const PHONE_HEIGHT = 22;   // px of the phone tier
const BOX_WIDTH = 18;      // px per phone in the box plot
const BOX_HEIGHT = 240;    // px of the box plot area
const QUANTITY_NAMES = {c: "c (cell)", h: "h (output / state)", i: "i (input gate)", f: "f (forget gate)",
                        o: "o (output gate)", z: "z (update gate)", r: "r (reset gate)", n: "n (candidate)"};

const state = {data: null, utt: 0, layer: null, quantity: null, units: [], zoom: 2, range: null,
               detailUnit: 0, phone: null, cache: new Map(), ui: {}, heat: null, box: null,
               sources: [], model: 0, modelSelect: null};

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}

function fmt(value) {
  if (!Number.isFinite(value)) return String(value);
  const a = Math.abs(value);
  return a !== 0 && (a < 0.01 || a >= 1000) ? value.toExponential(2) : value.toFixed(a < 10 ? 3 : 1);
}

function setStatus(text, isError) {
  const status = document.getElementById("explorer-status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

// "3,17,40-45" -> [3, 17, 40, ..., 45]; "" -> [] (meaning all units). Throws on a bad token.
function parseUnits(text, numUnits) {
  const units = [];
  for (const token of text.split(",").map(s => s.trim()).filter(s => s.length > 0)) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(token);
    if (!m) throw new Error(`bad unit "${token}": use numbers and ranges, e.g. 3,17,40-45`);
    const first = Number(m[1]), last = m[2] === undefined ? first : Number(m[2]);
    if (last < first) throw new Error(`bad range "${token}": ${last} < ${first}`);
    if (last >= numUnits) throw new Error(`unit ${last} out of range 0..${numUnits - 1}`);
    for (let u = first; u <= last; u++) if (!units.includes(u)) units.push(u);
  }
  return units;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

async function inflate(b64) {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Unit-major deltas [H, T] -> int8 codes [H, T] (running sum per unit, modulo 256).
function undelta(bytes, numFrames) {
  const deltas = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  const codes = new Int8Array(deltas.length);
  for (let row = 0; row < deltas.length; row += numFrames) {
    let acc = 0;
    for (let t = 0; t < numFrames; t++) {
      acc = (acc + deltas[row + t]) << 24 >> 24;
      codes[row + t] = acc;
    }
  }
  return codes;
}

function cached(key, make) {
  if (!state.cache.has(key)) state.cache.set(key, make());
  return state.cache.get(key);
}

function getCodes(uttIndex, layer, quantity) {
  const utt = state.data.utts[uttIndex];
  return cached(`v/${uttIndex}/${layer}/${quantity}`,
                async () => undelta(await inflate(utt.values[layer][quantity]), utt.num_frames));
}

function getFeats(uttIndex) {
  return cached(`f/${uttIndex}`, () => inflate(state.data.utts[uttIndex].feats));
}

function getBoxCodes(layer, quantity) {
  return cached(`b/${layer}/${quantity}`, async () => {
    const bytes = await inflate(state.data.stats.box[layer][quantity]);
    return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  });
}

// 256 values, index code + 128.
function valueTable(codec) {
  const table = new Float32Array(256);
  for (let code = -128; code < 128; code++) {
    const q = Math.max(-127, code);
    table[code + 128] = codec.kind === "linear" ? codec.offset + q * codec.step
      : Math.sign(q) * codec.knee * Math.expm1(Math.abs(q) * codec.step);
  }
  return table;
}

function currentCodec() {
  return state.data.codecs[state.layer][state.quantity];
}

// ---------------------------------------------------------------------------------------------------------------
// Colours

const SEQUENTIAL = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];  // viridis stops

function sequentialColour(x) {
  const s = Math.min(Math.max(x, 0), 1) * (SEQUENTIAL.length - 1);
  const i = Math.min(Math.floor(s), SEQUENTIAL.length - 2), w = s - i;
  return SEQUENTIAL[i].map((c, k) => Math.round(c + w * (SEQUENTIAL[i + 1][k] - c)));
}

function divergingColour(x) {  // x in [-1, 1]: blue - white - red
  const a = Math.min(Math.abs(x), 1);
  const fade = Math.round(255 * (1 - a));
  return x < 0 ? [fade, fade, 255 - Math.round(80 * a)] : [255 - Math.round(80 * a), fade, fade];
}

function colourOf(value, range) {
  const [lo, hi] = range;
  if (lo >= 0) return sequentialColour((value - lo) / (hi - lo));
  return divergingColour(value >= 0 ? value / hi : -value / lo);
}

// RGBA of the 256 codes under a colour range: [256 * 4].
function colourTable(values, range) {
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    table.set(colourOf(values[i], range), 4 * i);
    table[4 * i + 3] = 255;
  }
  return table;
}

function currentRange() {
  return state.range || state.data.ranges[state.layer][state.quantity];
}

// ---------------------------------------------------------------------------------------------------------------
// Drawing the tracks (spectrogram, phones, heat map); all share x = GUTTER + frame * zoom

function trackWidth(numFrames) {
  return GUTTER + numFrames * state.zoom;
}

function sizeCanvas(canvas, width, height) {
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = width + "px";
  canvas.style.height = height + "px";
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

// Draws an image of cols x rows pixels (RGBA bytes) scaled into the track area of ctx.
function blitPixels(ctx, pixels, cols, rows, height) {
  const image = new ImageData(pixels, cols, rows);
  const buffer = document.createElement("canvas");
  buffer.width = cols;
  buffer.height = rows;
  buffer.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(buffer, GUTTER, 0, cols * state.zoom, height);
}

function gutterLabel(ctx, text, y) {
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.fillText(text, 2, Math.max(6, y));
}

function drawSpectrogram(featBytes, numFrames) {
  const dim = state.data.feats_codec.dim;
  const ctx = sizeCanvas(state.ui.spec, trackWidth(numFrames), SPEC_HEIGHT);
  const pixels = new Uint8ClampedArray(numFrames * dim * 4);
  for (let d = 0; d < dim; d++) {
    const row = dim - 1 - d;  // low frequencies at the bottom
    for (let t = 0; t < numFrames; t++) {
      const rgb = sequentialColour(featBytes[d * numFrames + t] / 255);
      pixels.set([rgb[0], rgb[1], rgb[2], 255], 4 * (row * numFrames + t));
    }
  }
  blitPixels(ctx, pixels, numFrames, dim, SPEC_HEIGHT);
  gutterLabel(ctx, "Fbank", SPEC_HEIGHT / 2);
}

// [T] phone index per frame (-1 = no alignment) of the current utterance.
function framePhones(utt) {
  const phones = new Int32Array(utt.num_frames).fill(-1);
  for (const [start, end, phone] of utt.phones) phones.fill(phone, start, end);
  return phones;
}

function phoneName(phone) {
  return phone >= 0 ? state.data.phone_names[phone] : "(no alignment)";
}

function drawPhoneTier(utt) {
  const ctx = sizeCanvas(state.ui.phones, trackWidth(utt.num_frames), PHONE_HEIGHT);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.textAlign = "center";
  utt.phones.forEach(([start, end, phone], i) => {
    const x0 = GUTTER + start * state.zoom, width = (end - start) * state.zoom;
    ctx.fillStyle = phone === state.phone ? "#ffd27f" : (i % 2 ? "#e8eef7" : "#d5e0f0");
    ctx.fillRect(x0, 0, width, PHONE_HEIGHT);
    const name = phoneName(phone);
    if (ctx.measureText(name).width < width - 2) {
      ctx.fillStyle = "#000";
      ctx.fillText(name, x0 + width / 2, PHONE_HEIGHT / 2);
    }
  });
  ctx.textAlign = "left";
  gutterLabel(ctx, "phones", PHONE_HEIGHT / 2);
}

function rowHeight(numRows) {
  if (numRows <= 16) return 14;
  if (numRows <= 64) return 6;
  return Math.max(2, Math.floor(768 / numRows));
}

function shownUnits() {
  if (state.units.length > 0) return state.units;
  return Array.from({length: state.data.cell_dim}, (_, u) => u);
}

function drawHeatmap(codes, numFrames) {
  const units = shownUnits(), rowH = rowHeight(units.length);
  const ctx = sizeCanvas(state.ui.heat, trackWidth(numFrames), units.length * rowH);
  const colours = colourTable(valueTable(currentCodec()), currentRange());
  const pixels = new Uint8ClampedArray(numFrames * units.length * 4);
  units.forEach((unit, row) => {
    for (let t = 0; t < numFrames; t++) {
      const code = codes[unit * numFrames + t] + 128;
      pixels.set(colours.subarray(4 * code, 4 * code + 4), 4 * (row * numFrames + t));
    }
  });
  blitPixels(ctx, pixels, numFrames, units.length, units.length * rowH);
  drawUnitLabels(ctx, units, rowH);
  state.heat = {codes, numFrames, units, rowH};
}

function drawUnitLabels(ctx, units, rowH) {
  const every = Math.max(1, Math.ceil(12 / rowH));
  units.forEach((unit, row) => {
    if (row % every === 0) gutterLabel(ctx, `u${unit}`, row * rowH + rowH / 2);
    if (unit === state.detailUnit) {
      ctx.strokeStyle = "#000";
      ctx.strokeRect(GUTTER - 4, row * rowH, 4, rowH);
    }
  });
}

function drawLegend() {
  const canvas = state.ui.legend, [lo, hi] = currentRange();
  const ctx = sizeCanvas(canvas, 260, 28);
  for (let x = 0; x < 200; x++) {
    ctx.fillStyle = `rgb(${colourOf(lo + (hi - lo) * x / 199, [lo, hi]).join(",")})`;
    ctx.fillRect(x, 0, 1, 14);
  }
  ctx.fillStyle = "#000";
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "top";
  ctx.fillText(fmt(lo), 0, 15);
  ctx.textAlign = "right";
  ctx.fillText(fmt(hi), 200, 15);
}

// ---------------------------------------------------------------------------------------------------------------
// Box plot of one unit per phone, ranking of units for one phone

function phonesWithFrames() {
  const counts = state.data.stats.counts;
  return counts.map((n, p) => p).filter(p => counts[p] > 0);
}

// Five values (whisker low, Q1, median, Q3, whisker high) per phone of ``unit``.
function unitBoxes(boxCodes, unit) {
  const codec = state.data.stats.box_codecs[state.layer][state.quantity];
  const values = valueTable(codec), numPhones = state.data.phone_names.length;
  return phonesWithFrames().map(phone => {
    const base = (unit * numPhones + phone) * 5;
    return {phone, q: Array.from(boxCodes.subarray(base, base + 5), code => values[code + 128])};
  });
}

function drawBoxplot(boxCodes) {
  const boxes = unitBoxes(boxCodes, state.detailUnit);
  const width = GUTTER + Math.max(boxes.length, 8) * BOX_WIDTH + 10, height = BOX_HEIGHT + 50;
  const ctx = sizeCanvas(state.ui.box, width, height);
  const lo = Math.min(0, ...boxes.map(b => b.q[0])), hi = Math.max(0, ...boxes.map(b => b.q[4]));
  const yOf = v => 8 + (BOX_HEIGHT - 16) * (hi - v) / ((hi - lo) || 1);
  drawBoxAxis(ctx, lo, hi, yOf, width);
  boxes.forEach((box, i) => drawOneBox(ctx, box, GUTTER + i * BOX_WIDTH, yOf));
  state.box = {boxes, yOf};
  state.ui.boxTitle.textContent = `Unit ${state.detailUnit}, layer ${state.layer}, ${state.quantity}: values per ` +
    `phone (box Q1-Q3, line median, whiskers ${state.data.stats.percentiles[0]}-` +
    `${state.data.stats.percentiles[4]} %), over ${state.data.stats.frames} aligned frames of ` +
    `${state.data.stats.utts} utterances`;
}

// About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi].
function niceTicks(lo, hi, count) {
  const raw = (hi - lo) / count || 1, magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map(m => m * magnitude).find(s => s >= raw);
  const ticks = [];
  for (let k = Math.ceil(lo / step); k * step <= hi; k++) ticks.push(k * step);
  return ticks;
}

function drawBoxAxis(ctx, lo, hi, yOf, width) {
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#333";
  for (const v of niceTicks(lo, hi, 5)) {
    ctx.fillText(fmt(v), 2, yOf(v));
    ctx.fillRect(GUTTER - 4, yOf(v), 3, 1);
  }
  ctx.fillStyle = "#999";
  ctx.fillRect(GUTTER, yOf(0), width - GUTTER, 1);
}

function drawOneBox(ctx, box, x0, yOf) {
  const [low, q1, median, q3, high] = box.q, mid = x0 + BOX_WIDTH / 2;
  ctx.fillStyle = box.phone === state.phone ? "#ffd27f" : "#9bb8e0";
  ctx.fillRect(x0 + 3, yOf(q3), BOX_WIDTH - 6, Math.max(1, yOf(q1) - yOf(q3)));
  ctx.fillStyle = "#000";
  ctx.fillRect(mid, yOf(high), 1, yOf(q3) - yOf(high));
  ctx.fillRect(mid, yOf(q1), 1, yOf(low) - yOf(q1));
  ctx.fillRect(x0 + 3, yOf(median), BOX_WIDTH - 6, 2);
  ctx.save();
  ctx.translate(mid + 3, BOX_HEIGHT + 2);
  ctx.rotate(-Math.PI / 3);
  ctx.textAlign = "right";
  ctx.fillText(phoneName(box.phone), 0, 0);
  ctx.restore();
}

function rankedUnits() {
  const ranking = state.data.stats.ranking[state.layer][state.quantity];
  return state.phone === null ? [] : (ranking[String(state.phone)] || []);
}

function renderRanking() {
  const list = state.ui.ranking;
  list.replaceChildren();
  for (const [unit, d] of rankedUnits()) {
    const button = el("button", {text: `unit ${unit}`, onclick: () => chooseDetailUnit(unit)});
    const item = el("li", {class: unit === state.detailUnit ? "current" : ""},
                    [button, document.createTextNode(`  d = ${d >= 0 ? "+" : ""}${d.toFixed(2)}`)]);
    list.appendChild(item);
  }
  state.ui.phoneSelect.value = state.phone === null ? "" : String(state.phone);
}

// ---------------------------------------------------------------------------------------------------------------
// Interaction

function trackPosition(evt, canvas) {
  const rect = canvas.getBoundingClientRect();
  const x = evt.clientX - rect.left, y = evt.clientY - rect.top;
  return {x, y, frame: Math.floor((x - GUTTER) / state.zoom)};
}

function showTooltip(evt, text) {
  const tip = state.ui.tooltip;
  tip.textContent = text;
  tip.style.left = (evt.clientX + 14) + "px";
  tip.style.top = (evt.clientY + 14) + "px";
  tip.style.display = "block";
}

function hideTooltip() {
  state.ui.tooltip.style.display = "none";
  state.ui.cursor.style.display = "none";
}

function moveCursor(frame) {
  const cursor = state.ui.cursor;
  cursor.style.left = (GUTTER + (frame + 0.5) * state.zoom) + "px";
  cursor.style.display = "block";
}

function frameText(frame) {
  const utt = state.data.utts[state.utt];
  const phone = state.framePhones[frame];
  return `t ${(frame * state.data.frame_shift).toFixed(2)} s (frame ${frame}) | phone ${phoneName(phone)}` +
    (frame === utt.num_frames - 1 && utt.num_frames < utt.total_frames ? " | (cut here)" : "");
}

// The heat map cell under the mouse: {frame, unit, value} or null.
function heatCellAt(evt) {
  const heat = state.heat, pos = trackPosition(evt, state.ui.heat);
  const row = Math.floor(pos.y / heat.rowH);
  if (pos.frame < 0 || pos.frame >= heat.numFrames || row < 0 || row >= heat.units.length) return null;
  const unit = heat.units[row];
  const value = valueTable(currentCodec())[heat.codes[unit * heat.numFrames + pos.frame] + 128];
  return {frame: pos.frame, unit, value};
}

function onHeatHover(evt) {
  const cell = state.heat && heatCellAt(evt);
  if (!cell) return hideTooltip();
  moveCursor(cell.frame);
  // the value is the one of its code (rounded as the page stores it)
  showTooltip(evt, `${frameText(cell.frame)} | unit ${cell.unit} | ${state.quantity} = ${fmt(cell.value)}`);
}

function onTrackHover(evt, canvas) {
  const pos = trackPosition(evt, canvas);
  if (pos.frame < 0 || pos.frame >= state.data.utts[state.utt].num_frames) return hideTooltip();
  moveCursor(pos.frame);
  showTooltip(evt, frameText(pos.frame));
}

// Click: that unit's box plot. Shift-click: add the unit to (or remove it from) the units box.
function onHeatClick(evt) {
  const cell = state.heat && heatCellAt(evt);
  if (!cell) return;
  if (evt.shiftKey) toggleListedUnit(cell.unit);
  else chooseDetailUnit(cell.unit);
}

function toggleListedUnit(unit) {
  const units = parseUnits(state.ui.unitsBox.value, state.data.cell_dim);
  const i = units.indexOf(unit);
  if (i >= 0) units.splice(i, 1);
  else units.push(unit);
  state.ui.unitsBox.value = units.join(",");
  readControlsAndRender();
}

function onPhoneClick(evt) {
  const pos = trackPosition(evt, state.ui.phones);
  const phone = state.framePhones[pos.frame];
  if (phone !== undefined && phone >= 0) choosePhone(phone);
}

function onBoxHover(evt) {
  const rect = state.ui.box.getBoundingClientRect(), box = state.box;
  const i = Math.floor((evt.clientX - rect.left - GUTTER) / BOX_WIDTH);
  if (!box || i < 0 || i >= box.boxes.length) return hideTooltip();
  const {phone, q} = box.boxes[i];
  showTooltip(evt, `${phoneName(phone)}: ${state.data.stats.counts[phone]} frames | median ${fmt(q[2])} | ` +
    `Q1-Q3 ${fmt(q[1])}..${fmt(q[3])} | whiskers ${fmt(q[0])}..${fmt(q[4])}`);
}

async function chooseDetailUnit(unit) {
  state.detailUnit = unit;
  state.ui.unitInput.value = String(unit);
  await renderDetails();
  if (state.heat) drawHeatmap(state.heat.codes, state.heat.numFrames);
}

async function choosePhone(phone) {
  state.phone = phone;
  renderRanking();
  drawPhoneTier(state.data.utts[state.utt]);
  await renderDetails();
}

function showRankedUnits() {
  const units = rankedUnits().map(([unit]) => unit);
  if (units.length === 0) return;
  state.ui.unitsBox.value = units.join(",");
  readControlsAndRender();
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

async function renderTracks() {
  const utt = state.data.utts[state.utt];
  const [featBytes, codes] = await Promise.all([getFeats(state.utt), getCodes(state.utt, state.layer, state.quantity)]);
  state.framePhones = framePhones(utt);
  drawSpectrogram(featBytes, utt.num_frames);
  drawPhoneTier(utt);
  drawHeatmap(codes, utt.num_frames);
  drawLegend();
  const cut = utt.num_frames < utt.total_frames ? ` (first ${utt.num_frames} of ${utt.total_frames} frames)` : "";
  state.ui.words.textContent = `${utt.id}${cut}: ${utt.words.join(" ") || "(no words)"}`;
}

async function renderDetails() {
  if (state.data.stats.frames === 0) {
    state.ui.boxTitle.textContent = "No phone alignment in the extraction: no per-phone statistics.";
    return;
  }
  drawBoxplot(await getBoxCodes(state.layer, state.quantity));
  renderRanking();
}

async function render() {
  await renderTracks();
  await renderDetails();
  setStatus(`Utterance ${state.utt + 1} of ${state.data.utts.length}, layer ${state.layer}, ` +
            `${QUANTITY_NAMES[state.quantity] || state.quantity}, ${shownUnits().length} units`);
}

function parseRange(text) {
  if (text.trim() === "") return null;
  const parts = text.split(",").map(Number);
  if (parts.length !== 2 || !parts.every(Number.isFinite) || parts[0] >= parts[1] || parts[0] > 0)
    throw new Error(`bad colour range "${text}": use lo,hi with lo < hi and lo <= 0, e.g. -10,10 or 0,1`);
  return parts;
}

function readControls() {
  const ui = state.ui;
  state.utt = Number(ui.uttSelect.value);
  state.layer = ui.layerSelect.value;
  state.quantity = ui.quantitySelect.value;
  state.zoom = Number(ui.zoomSelect.value);
  state.units = parseUnits(ui.unitsBox.value, state.data.cell_dim);
  state.range = parseRange(ui.rangeBox.value);
  const unit = Number(ui.unitInput.value);
  if (Number.isInteger(unit) && unit >= 0 && unit < state.data.cell_dim) state.detailUnit = unit;
  ui.rangeBox.placeholder = state.data.ranges[state.layer][state.quantity].map(fmt).join(",");
}

async function readControlsAndRender() {
  try {
    readControls();
    await render();
  } catch (err) {
    setStatus(err.message, true);
    if (!(err.message.startsWith("bad ") || err.message.startsWith("unit "))) throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Building the page

function select(options, onchange) {
  return el("select", {onchange}, options.map(([value, text]) => el("option", {value, text})));
}

function labelled(text, control) {
  return el("label", {}, [document.createTextNode(text + " "), control]);
}

function buildControls(data) {
  const ui = state.ui, change = () => readControlsAndRender();
  ui.uttSelect = select(data.utts.map((u, i) => [String(i), `${u.id} (${(u.total_frames * data.frame_shift)
    .toFixed(1)} s)`]), change);
  ui.layerSelect = select(data.layers.map(k => [String(k), `layer ${k}`]), change);
  ui.quantitySelect = select(data.quantities.map(q => [q, QUANTITY_NAMES[q] || q]), change);
  ui.zoomSelect = select([1, 2, 3, 4, 6].map(z => [String(z), `${z} px/frame`]), change);
  ui.zoomSelect.value = String(state.zoom);
  ui.unitsBox = el("input", {type: "text", placeholder: "all, or e.g. 3,17,40-45",
                             onkeydown: e => { if (e.key === "Enter") change(); }});
  ui.rangeBox = el("input", {type: "text", onkeydown: e => { if (e.key === "Enter") change(); }});
  const apply = el("button", {text: "apply", onclick: change});
  return el("div", {class: "controls"}, [
    labelled("utterance", ui.uttSelect), labelled("layer", ui.layerSelect),
    labelled("quantity", ui.quantitySelect), labelled("units", ui.unitsBox),
    labelled("colour range", ui.rangeBox), labelled("zoom", ui.zoomSelect), apply]);
}

function buildTracks() {
  const ui = state.ui;
  ui.spec = el("canvas");
  ui.phones = el("canvas", {title: "click a phone: units that respond most"});
  ui.heat = el("canvas", {title: "click a row: per-phone box plot of that unit; shift-click: add it to the units"});
  ui.cursor = el("div", {id: "cursor"});
  ui.spec.addEventListener("mousemove", e => onTrackHover(e, ui.spec));
  ui.phones.addEventListener("mousemove", e => onTrackHover(e, ui.phones));
  ui.phones.addEventListener("click", onPhoneClick);
  ui.heat.addEventListener("mousemove", onHeatHover);
  ui.heat.addEventListener("click", onHeatClick);
  for (const c of [ui.spec, ui.phones, ui.heat]) c.addEventListener("mouseleave", hideTooltip);
  return el("div", {id: "tracks"}, [ui.spec, ui.phones, ui.heat, ui.cursor]);
}

function buildDetails(data) {
  const ui = state.ui;
  ui.unitInput = el("input", {type: "number", min: "0", max: String(data.cell_dim - 1), value: "0",
                              onchange: () => chooseDetailUnit(Number(ui.unitInput.value))});
  ui.box = el("canvas");
  ui.box.addEventListener("mousemove", onBoxHover);
  ui.box.addEventListener("mouseleave", hideTooltip);
  ui.boxTitle = el("p", {class: "note"});
  const phoneOptions = [["", "(choose)"]].concat(phonesWithFrames().map(p => [String(p), phoneName(p)]));
  ui.phoneSelect = select(phoneOptions, () => {
    if (ui.phoneSelect.value !== "") choosePhone(Number(ui.phoneSelect.value));
  });
  ui.ranking = el("ol", {id: "ranking"});
  const show = el("button", {text: "show these units in the heat map", onclick: showRankedUnits});
  const note = el("p", {class: "note", text: "d = (mean on the phone - mean over all frames) / standard " +
    "deviation over all frames, per unit; units ranked by |d|."});
  return el("div", {class: "details"}, [
    el("div", {}, [labelled("unit", ui.unitInput), ui.boxTitle, ui.box]),
    el("div", {}, [labelled("phone", ui.phoneSelect), note, ui.ranking, show])]);
}

function describeData(data) {
  const codecs = data.layers.flatMap(k => data.quantities.map(q => {
    const c = data.codecs[k][q];
    return `${k}/${q}: ${c.kind} step ${fmt(c.step)}${c.kind === "log" ? ` knee ${c.knee}` : ""}`;
  }));
  return `${data.utts.length} of ${data.num_utts_extracted} utterances (at most ${data.max_frames} frames each), ` +
    `${data.cell} with ${data.num_layers} layers x ${data.cell_dim} units; values stored as ` +
    `${Math.log2(data.codecs[data.layers[0]][data.quantities[0]].max_code + 1) + 1}-bit codes ` +
    `(${codecs.join("; ")}), so hover values are rounded accordingly.`;
}

function buildExplorer(data) {
  const root = document.getElementById("explorer-root");
  state.ui.tooltip = el("div", {id: "tooltip"});
  state.ui.words = el("div", {class: "words"});
  state.ui.legend = el("canvas");
  root.replaceChildren(
    el("p", {class: "note", text: describeData(data)}), buildControls(data),
    el("p", {id: "explorer-status"}), state.ui.words, buildTracks(), state.ui.legend, buildDetails(data),
    state.ui.tooltip);
}

// The explorer data of the page: [{name, node}], one <script id="memvis-data"> (one-model page, name null) or one
// <script class="memvis-model" data-model=NAME> per model (the run page, with a model selector).
function dataSources() {
  const single = document.getElementById("memvis-data");
  if (single) return [{name: null, node: single}];
  return Array.from(document.querySelectorAll("script.memvis-model"), node => ({name: node.dataset.model, node}));
}

// Shows model ``index`` of the page's data sources in the explorer (rebuilt from scratch: controls, caches).
async function loadModel(index) {
  const source = state.sources[index];
  const data = JSON.parse(source.node.textContent);
  Object.assign(state, {data, model: index, utt: 0, units: [], range: null, detailUnit: 0, cache: new Map(), ui: {},
                        heat: null, box: null});
  if (state.modelSelect) state.modelSelect.value = String(index);
  buildExplorer(data);
  const counts = data.stats.counts;
  state.phone = phonesWithFrames().reduce((best, p) => best === null || counts[p] > counts[best] ? p : best, null);
  await readControlsAndRender();
}

function buildModelSelector() {
  if (state.sources.length < 2) return;
  state.modelSelect = select(state.sources.map((s, i) => [String(i), s.name]),
                             () => loadModel(Number(state.modelSelect.value)));
  document.getElementById("explorer-models").replaceChildren(labelled("model", state.modelSelect));
}

async function start() {
  state.sources = dataSources();
  if (typeof DecompressionStream === "undefined") {
    setStatus("This browser has no DecompressionStream; open the page in a current Chromium, Firefox or Safari.",
              true);
    return;
  }
  if (state.sources.length > 0) {  // else the page (a run without extractions) has nothing to explore
    buildModelSelector();
    await loadModel(0);
  }
  if (location.hash === "#selftest") await runSelfTest();
}

// ---------------------------------------------------------------------------------------------------------------
// Self-test (page opened with #selftest)

function check(condition, message) {
  if (!condition) throw new Error("self-test: " + message);
}

function expectThrow(fn, message) {
  let threw = false;
  try { fn(); } catch (err) { threw = true; }
  check(threw, message);
}

function mouseAt(canvas, type, x, y) {
  const rect = canvas.getBoundingClientRect();
  canvas.dispatchEvent(new MouseEvent(type, {clientX: rect.left + x, clientY: rect.top + y, bubbles: true}));
}

function canvasHasInk(canvas) {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
  return false;
}

async function selfTestAllViews(done) {
  const ui = state.ui;
  for (const layer of state.data.layers) {
    for (const quantity of state.data.quantities) {
      ui.layerSelect.value = String(layer);
      ui.quantitySelect.value = quantity;
      await readControlsAndRender();
      const codes = await getCodes(state.utt, String(layer), quantity);
      check(codes.length === state.data.cell_dim * state.data.utts[state.utt].num_frames,
            `layer ${layer} ${quantity}: ${codes.length} codes`);
      const boxDrawn = state.data.stats.frames === 0 || canvasHasInk(ui.box);
      check(canvasHasInk(ui.heat) && canvasHasInk(ui.spec) && boxDrawn, `layer ${layer} ${quantity}: blank`);
    }
  }
  done.push(`${state.data.layers.length * state.data.quantities.length} layer/quantity views`);
}

async function selfTestHoverAndClick(done) {
  const ui = state.ui;
  ui.unitsBox.value = "0,2-3";
  await readControlsAndRender();
  check(state.heat.units.join(",") === "0,2,3", `units ${state.heat.units}`);
  check(ui.heat.height === 3 * state.heat.rowH, `heat map height ${ui.heat.height}`);
  const frame = Math.floor(state.heat.numFrames / 2);
  mouseAt(ui.heat, "mousemove", GUTTER + (frame + 0.5) * state.zoom, 1.5 * state.heat.rowH);
  const tip = ui.tooltip.textContent;
  check(ui.tooltip.style.display === "block" && tip.includes(`frame ${frame}`) && tip.includes("unit 2") &&
        tip.includes("phone "), `tooltip "${tip}"`);
  mouseAt(ui.heat, "click", GUTTER + 1, 2.5 * state.heat.rowH);
  await new Promise(resolve => setTimeout(resolve, 0));
  await getBoxCodes(state.layer, state.quantity);
  check(state.detailUnit === 3 && state.box.boxes.length === phonesWithFrames().length,
        `click: detail unit ${state.detailUnit}, ${state.box && state.box.boxes.length} boxes`);
  ui.heat.dispatchEvent(new MouseEvent("click", {clientX: ui.heat.getBoundingClientRect().left + GUTTER + 1,
    clientY: ui.heat.getBoundingClientRect().top + 0.5 * state.heat.rowH, shiftKey: true}));
  await new Promise(resolve => setTimeout(resolve, 0));
  check(ui.unitsBox.value === "2,3" && state.heat.units.join(",") === "2,3", `shift-click: "${ui.unitsBox.value}"`);
  mouseAt(ui.box, "mousemove", GUTTER + BOX_WIDTH / 2, 50);
  check(ui.tooltip.textContent.includes("median"), `box tooltip "${ui.tooltip.textContent}"`);
  done.push(`hover "${tip}"`, `click -> unit ${state.detailUnit} with ${state.box.boxes.length} phone boxes`);
}

async function selfTestRanking(done) {
  const phone = phonesWithFrames()[phonesWithFrames().length - 1];
  await choosePhone(phone);
  const expected = Math.min(state.data.stats.top_units, state.data.cell_dim);
  check(state.ui.ranking.children.length === expected, `ranking of ${state.ui.ranking.children.length} units`);
  showRankedUnits();
  await new Promise(resolve => setTimeout(resolve, 0));
  check(state.units.length === expected, `show ranked units: ${state.units.length}`);
  done.push(`phone ${phoneName(phone)}: ${expected} ranked units`);
}

function selfTestParsing(done) {
  check(parseUnits("3,17,5-7", 64).join(",") === "3,17,5,6,7", "parseUnits");
  check(parseUnits(" ", 64).length === 0, "parseUnits empty");
  expectThrow(() => parseUnits("7-5", 64), "reversed range accepted");
  expectThrow(() => parseUnits("x", 64), "bad token accepted");
  expectThrow(() => parseUnits("64", 64), "unit out of range accepted");
  check(valueTable({kind: "log", knee: 1, step: 0.03})[128 + 127] > 40, "log code table");
  check(niceTicks(-0.3, 1.7, 4).join(",") === "0,0.5,1,1.5", `ticks ${niceTicks(-0.3, 1.7, 4)}`);
  done.push("parsing");
}

// The run page (steps_py.memvis.run_report): the claims table comes first, and every claim links to an element of
// the page that exists and holds a figure or a table (or says why it has none).
function selfTestRunPage(done) {
  const claims = document.getElementById("claims");
  if (!claims) return;
  const firstSection = document.querySelector("h2");
  check(firstSection && firstSection.id === "claims-heading", `first section ${firstSection && firstSection.id}`);
  const links = Array.from(claims.querySelectorAll("a[href^='#']"));
  const rows = claims.querySelectorAll("tr[id^='claim-']").length;  // none when the run has no findings.json
  check(links.length === rows, `${rows} claims but ${links.length} links to a figure`);
  for (const link of links) {
    const target = document.getElementById(link.getAttribute("href").slice(1));
    check(target !== null, `claim link ${link.getAttribute("href")} leads nowhere`);
    const evidence = "img, table, .missing";
    check(target.matches(evidence) || target.querySelector(evidence) !== null,
          `${link.getAttribute("href")} shows nothing`);
  }
  done.push(`claims first, ${links.length} claim links resolve`);
}

async function selfTestModel(done) {
  check(state.data.utts.length > 0, "no utterances");
  await selfTestAllViews(done);
  if (state.data.stats.frames > 0) {
    await selfTestHoverAndClick(done);
    await selfTestRanking(done);
  }
}

async function runSelfTest() {
  const result = document.getElementById("selftest-result");
  const done = [];
  try {
    selfTestParsing(done);
    selfTestRunPage(done);
    for (let i = 0; i < state.sources.length; i++) {
      if (state.sources.length > 1) {
        await loadModel(i);
        check(state.modelSelect.value === String(i), `model selector ${state.modelSelect.value}`);
        done.push(`model ${state.sources[i].name}`);
      }
      await selfTestModel(done);
    }
    if (state.sources.length > 1) await loadModel(0);
    result.textContent = "ok " + done.join("; ");
  } catch (err) {
    result.textContent = "error " + err.message + "\n" + (err.stack || "");
    console.error(err);
  }
}

function reportUncaught(message) {
  const result = document.getElementById("selftest-result");
  if (location.hash === "#selftest") result.textContent = "error uncaught: " + message;
  setStatus("Error: " + message, true);
}

window.addEventListener("error", e => reportUncaught(e.message));
window.addEventListener("unhandledrejection", e => reportUncaught(String(e.reason && e.reason.message || e.reason)));
start();
