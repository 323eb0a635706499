// mnist_cnn explorer, draw page: the pad, the 28x28 input, the bars, every layer's maps,
// knock-outs and the occlusion map. The arithmetic is in draw-net.js; the model and the test
// images come from draw-model.js and draw-samples.js (script files: pages opened from disk may
// not fetch()). One local file, no libraries, no network.
"use strict";

(function () {
  const MODEL = window.DRAW_MODEL, SAMPLES = window.DRAW_SAMPLES, F = DrawNet.FIELD;
  const net = new DrawNet.Net(MODEL);
  const shown = net.layers.filter((L) => L.kind !== "flatten" && L.kind !== "dropout");
  const samplePixels = DrawNet.bytes(SAMPLES.pixels);
  const $ = (id) => document.getElementById(id);
  // names come from the model file and the data set: text, never markup
  const esc = (text) => String(text).replace(/[&<>"']/g, (ch) => "&#" + ch.charCodeAt(0) + ";");
  const pad = $("pad"), padCtx = pad.getContext("2d", { willReadFrequently: true });
  const STROKE = 22; // px on the 280 px pad: about an MNIST stroke once scaled into 20x20

  const state = {
    strokes: [], // [[x, y], ...] per stroke, pad pixels
    drawing: false,
    ink: null, // {alpha: Uint8ClampedArray, height, width}: the ink the input was made from
    input: null, // Float32Array(784) or null (blank)
    source: "",
    label: null,
    result: null, // {outputs, probs}
    knocked: {}, // layer name -> Set of unit indices
    occlusion: null,
  };

  // ------------------------------------------------------------------ colours
  const VIRIDIS = [[68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140],
    [40, 174, 128], [94, 201, 98], [173, 220, 48], [253, 231, 37]];
  const RDBU = [[5, 48, 97], [42, 113, 178], [107, 172, 209], [194, 221, 236], [247, 246, 246],
    [251, 204, 180], [228, 128, 102], [186, 40, 50], [103, 0, 31]];
  function colour(map, t) {
    const u = Math.min(1, Math.max(0, t)) * (map.length - 1), i = Math.min(map.length - 2, Math.floor(u));
    const f = u - i;
    return map[i].map((v, j) => Math.round(v + f * (map[i + 1][j] - v)));
  }
  const LUT = new Uint8Array(256 * 3); // viridis in 256 steps: the grids are redrawn per frame
  for (let i = 0; i < 256; i++) LUT.set(colour(VIRIDIS, i / 255), 3 * i);

  // ------------------------------------------------------------------ the pad
  function redrawPad() {
    padCtx.clearRect(0, 0, pad.width, pad.height);
    padCtx.lineCap = padCtx.lineJoin = "round";
    padCtx.lineWidth = STROKE;
    padCtx.strokeStyle = padCtx.fillStyle = "#000";
    for (const s of state.strokes) {
      padCtx.beginPath();
      if (s.length === 1) {
        padCtx.arc(s[0][0], s[0][1], STROKE / 2, 0, 2 * Math.PI);
        padCtx.fill();
        continue;
      }
      padCtx.moveTo(s[0][0], s[0][1]);
      for (const [x, y] of s.slice(1)) padCtx.lineTo(x, y);
      padCtx.stroke();
    }
  }

  function padPoint(event) {
    const box = pad.getBoundingClientRect(); // the border is outside the drawing
    return [(event.clientX - box.left - pad.clientLeft) * pad.width / pad.clientWidth,
      (event.clientY - box.top - pad.clientTop) * pad.height / pad.clientHeight];
  }

  function fromPad() {
    redrawPad();
    const { data } = padCtx.getImageData(0, 0, pad.width, pad.height);
    const alpha = new Uint8ClampedArray(pad.width * pad.height), ink = new Float64Array(alpha.length);
    for (let i = 0; i < alpha.length; i++) ink[i] = (alpha[i] = data[4 * i + 3]) / 255;
    state.ink = { alpha, height: pad.height, width: pad.width };
    state.source = state.strokes.length ? "your drawing" : "";
    state.label = null;
    setInput(DrawNet.toMnistField(ink, pad.height, pad.width));
  }

  let frame = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; fromPad(); });
  }

  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    state.drawing = true;
    state.strokes.push([padPoint(event)]);
    schedule();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!state.drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) state.strokes[state.strokes.length - 1].push(padPoint(e));
    schedule();
  });
  for (const type of ["pointerup", "pointercancel"]) {
    pad.addEventListener(type, () => {
      if (!state.drawing) return;
      state.drawing = false;
      fromPad();
      occludeSoon();
    });
  }
  $("undo").addEventListener("click", () => { state.strokes.pop(); fromPad(); occludeSoon(); });
  $("clear").addEventListener("click", () => { state.strokes = []; fromPad(); occludeSoon(); });

  // ------------------------------------------------------------------ test images
  function takeSample(n) {
    n = Math.max(0, Math.min(SAMPLES.count - 1, Math.floor(n) || 0));
    const x = new Float32Array(F * F);
    for (let i = 0; i < x.length; i++) x[i] = samplePixels[n * F * F + i] / 255;
    state.strokes = [];
    redrawPad();
    state.ink = null;
    state.source = "test image #" + n;
    state.label = SAMPLES.labels[n];
    $("sample-index").value = n;
    setInput(x);
    occludeSoon();
  }
  $("take").addEventListener("click", () => takeSample(+$("sample-index").value));
  $("random").addEventListener("click", () => takeSample(Math.floor(Math.random() * SAMPLES.count)));

  // ------------------------------------------------------------------ forward and display
  function setInput(x) {
    state.input = x;
    run();
  }

  const recent = []; // the last forward passes' milliseconds

  function run() {
    if (!state.input) {
      state.result = null;
    } else {
      const started = performance.now();
      state.result = net.forward(state.input, state.knocked);
      recent.push(performance.now() - started);
      if (recent.length > 20) recent.shift();
    }
    render();
  }

  function label(k) { // "4", or "9 Ankle boot" where classes have names
    const name = MODEL.class_names[k];
    return name === String(k) ? name : k + " " + name;
  }
  const className = (k) => esc(label(k)); // for HTML

  function predicted() {
    const p = state.result.probs;
    return p.indexOf(Math.max(...p));
  }

  function renderField() {
    const ctx = $("field").getContext("2d"), img = ctx.createImageData(F, F);
    for (let i = 0; i < F * F; i++) {
      const v = 255 - Math.round(255 * (state.input ? state.input[i] : 0)); // black ink on white
      img.data.set([v, v, v, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
  }

  function renderBars() {
    const p = state.result ? state.result.probs : new Float32Array(net.classes);
    const best = state.result ? predicted() : -1;
    $("bars").innerHTML = [...p].map((v, k) =>
      '<div class="bar' + (k === best ? " best" : "") + (k === state.label ? " label" : "") + '">' +
      '<span class="name">' + className(k) + '</span><span class="track"><span style="width:' +
      (100 * v).toFixed(1) + '%"></span></span><span class="val">' + (100 * v).toFixed(1) +
      "%</span></div>").join("");
    const off = Object.values(state.knocked).reduce((n, s) => n + s.size, 0);
    $("knocked").textContent = off + " unit" + (off === 1 ? "" : "s") + " knocked out";
    $("sample-info").textContent = !state.source ? "Draw with the mouse, a finger or a pen." :
      state.source + (state.label === null ? "" : ", label " + label(state.label)) +
      (state.result ? "; the network says " + label(best) : "");
    const median = recent.slice().sort((a, b) => a - b)[Math.floor(recent.length / 2)];
    $("timing").textContent = state.result ? "forward pass " + median.toFixed(1) + " ms (median of the last " +
      recent.length + ")" : "";
  }

  // One canvas per layer: its maps in a grid (1 px apart), or its units in a row, one colour
  // scale per layer (viridis from min(0, smallest) to the largest value).
  const grids = shown.map((L) => {
    const maps = L.shape.length === 3;
    const [h, w] = maps ? L.shape : [1, 1];
    const cols = maps ? Math.min(L.channels, w >= 8 ? 16 : 32) : Math.min(L.channels, 35);
    const rows = Math.ceil(L.channels / cols);
    const width = cols * (w + 1) - 1, height = rows * (h + 1) - 1;
    const zoom = Math.max(1, Math.min(maps ? 8 : 14, Math.floor(960 / width)));
    const section = document.createElement("section");
    section.className = "draw-layer";
    const desc = L.kind + (L.kernel ? " " + L.kernel.join("x") + (L.strides[0] > 1 ? "/" + L.strides[0] : "") : "") +
      (L.activation ? ", " + L.activation : "") + " \u2192 " + L.shape.join("\u00d7");
    section.innerHTML = "<h3>" + esc(L.name) + ' <span class="small">' + esc(desc) +
      '</span> <span class="small scale"></span></h3>';
    const canvas = document.createElement("canvas");
    Object.assign(canvas, { width, height, className: "px" });
    canvas.style.width = width * zoom + "px";
    canvas.dataset.layer = L.name;
    section.appendChild(canvas);
    $("layers").appendChild(section);
    const grid = { L, h, w, cols, zoom, canvas, scale: section.querySelector(".scale") };
    canvas.addEventListener("mousemove", (event) => hover(grid, event));
    canvas.addEventListener("mouseleave", () => { $("hover").style.display = "none"; });
    canvas.addEventListener("click", (event) => clickMap(grid, event));
    return grid;
  });
  const notShown = net.layers.filter((L) => !shown.includes(L)).map((L) => L.name + " (" + L.kind + ")");
  if (notShown.length) {
    const note = document.createElement("p");
    note.className = "small";
    note.textContent = "Not drawn, being the layer above unchanged: " + notShown.join(", ") +
      " (dropout is the identity at inference; flatten lists the maps in height, width, channel order).";
    $("layers").appendChild(note);
  }

  function renderGrid(g) {
    const { L, h, w, cols, canvas } = g, ctx = canvas.getContext("2d");
    const img = ctx.createImageData(canvas.width, canvas.height);
    img.data.fill(255);
    const y = state.result && state.result.outputs[net.layers.indexOf(L)];
    let lo = 0, hi = 0;
    if (y) for (const v of y) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    // a knocked-out unit's map is zero here too, except after a batch norm (its shift)
    const span = hi - lo || 1, off = L.kind !== "batch_norm" && state.knocked[L.source];
    const px = img.data;
    for (let c = 0; c < L.channels; c++) {
      const x0 = (c % cols) * (w + 1), y0 = Math.floor(c / cols) * (h + 1), dead = off && off.has(c);
      for (let p = 0; p < h * w; p++) {
        const at = 4 * ((y0 + Math.floor(p / w)) * canvas.width + x0 + (p % w));
        if (dead) { px[at] = 200; px[at + 1] = px[at + 2] = 40; continue; }
        if (!y) { px[at] = px[at + 1] = px[at + 2] = 235; continue; }
        const i = 3 * Math.round(255 * (y[p * L.channels + c] - lo) / span);
        px[at] = LUT[i]; px[at + 1] = LUT[i + 1]; px[at + 2] = LUT[i + 2];
      }
    }
    ctx.putImageData(img, 0, 0);
    g.scale.textContent = y ? "scale " + lo.toPrecision(3) + " to " + hi.toPrecision(3) : "";
  }

  function render() {
    renderField();
    renderBars();
    grids.forEach(renderGrid);
  }

  function mapAt(g, event) {
    const x = Math.floor(event.offsetX / g.zoom), y = Math.floor(event.offsetY / g.zoom);
    const col = Math.floor(x / (g.w + 1)), row = Math.floor(y / (g.h + 1));
    const c = row * g.cols + col;
    return x % (g.w + 1) === g.w || y % (g.h + 1) === g.h || c >= g.L.channels ? -1 : c;
  }

  function hover(g, event) {
    const c = mapAt(g, event), box = $("hover"), L = g.L;
    if (c < 0) { box.style.display = "none"; return; }
    const unit = L.source ? L.source + "-" + c : null;
    let numbers = "";
    if (state.result) {
      const y = state.result.outputs[net.layers.indexOf(L)];
      let best = -Infinity, at = 0, sum = 0;
      for (let p = 0; p < L.spatial; p++) {
        const v = y[p * L.channels + c];
        sum += v;
        if (v > best) { best = v; at = p; }
      }
      numbers = L.spatial > 1 ? "max " + best.toPrecision(4) + " at (" + Math.floor(at / g.w) + ", " +
        (at % g.w) + "), mean " + (sum / L.spatial).toPrecision(4) : "value " + best.toPrecision(4);
    }
    const off = state.knocked[L.source] && state.knocked[L.source].has(c);
    const name = esc(L.name), of = unit && unit !== L.name + "-" + c ? " (of unit " + esc(unit) + ")" : "";
    box.innerHTML = "<b>" + name + " map " + c + "</b>" + of + (off ? ' <span class="off">knocked out</span>' : "") +
      "<br>" + numbers + (L.page ? '<br><img class="px" width="84" height="84" alt="OIP of ' + esc(unit) +
      '" src="img/' + encodeURIComponent(unit) + '.png"><br>click: ' + (knockMode() ? "knock out / restore" : "its unit page")
        : L.source && knockMode() ? "<br>click: knock out / restore" : "");
    Object.assign(box.style, { display: "block", left: event.clientX + 14 + "px", top: event.clientY + 14 + "px" });
  }

  const knockMode = () => document.querySelector("input[name=mode]:checked").value === "knock";

  function clickMap(g, event) {
    const c = mapAt(g, event);
    if (c < 0 || !g.L.source) return;
    if (knockMode()) toggle(g.L.source, c);
    else if (g.L.page) window.location.href = encodeURIComponent(g.L.source + "-" + c) + ".html";
  }

  function toggle(layer, c) {
    const off = state.knocked[layer] || (state.knocked[layer] = new Set());
    if (off.has(c)) off.delete(c); else off.add(c);
    run();
    occludeSoon();
  }
  $("reset").addEventListener("click", () => { state.knocked = {}; run(); occludeSoon(); });

  // ------------------------------------------------------------------ occlusion
  let occlusionTimer = 0;
  function occludeSoon() {
    clearTimeout(occlusionTimer);
    state.occlusion = null; // the one shown is of the input before
    occlusionTimer = setTimeout(occlude, 150);
  }

  function occlude() {
    const box = $("occlusion");
    if (!state.result) { box.innerHTML = ""; state.occlusion = null; return; }
    const k = predicted(), started = performance.now();
    const maps = net.occlusion(state.input, k, state.knocked);
    state.occlusion = { maps, ms: performance.now() - started, k };
    box.innerHTML = "";
    for (const m of maps) {
      const fig = document.createElement("figure"), canvas = document.createElement("canvas");
      Object.assign(canvas, { width: F, height: F, className: "px big" });
      const ctx = canvas.getContext("2d"), img = ctx.createImageData(F, F);
      for (let i = 0; i < F * F; i++) {
        // the patch's change in colour, over the image drawn faintly
        const rgb = colour(RDBU, 0.5 + 0.5 * m.drop[i] / (m.max || 1)), ink = 1 - 0.35 * state.input[i];
        img.data.set([rgb[0] * ink, rgb[1] * ink, rgb[2] * ink, 255], 4 * i);
      }
      ctx.putImageData(img, 0, 0);
      fig.appendChild(canvas);
      fig.insertAdjacentHTML("beforeend", "<figcaption>" + m.size + "&times;" + m.size +
        " patch: largest change " + (100 * m.max).toFixed(1) + " points of p(" + className(k) + ")</figcaption>");
      box.appendChild(fig);
    }
    box.insertAdjacentHTML("beforeend", '<p class="small">' + maps.length + " maps in " +
      state.occlusion.ms.toFixed(0) + " ms</p>");
  }

  // ------------------------------------------------------------------ for tests and benches
  const b64 = (bytes) => {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const knockedFrom = (spec) => Object.fromEntries(Object.entries(spec || {}).map(([k, v]) => [k, new Set(v)]));
  window.drawPage = {
    layers: net.layers.map((L) => ({ name: L.name, kind: L.kind, shape: L.shape, source: L.source, page: L.page })),
    // the raw ink of the pad the current input was made from (alpha bytes, base64)
    ink: () => state.ink && { height: state.ink.height, width: state.ink.width, alpha: b64(state.ink.alpha) },
    field: () => state.input && Array.from(state.input),
    state: () => ({
      probs: state.result && Array.from(state.result.probs), predicted: state.result ? predicted() : null,
      source: state.source, label: state.label,
      knocked: Object.fromEntries(Object.entries(state.knocked).map(([k, v]) => [k, [...v].sort((a, b) => a - b)])),
      occlusion: state.occlusion && { ms: state.occlusion.ms, k: state.occlusion.k,
        maps: state.occlusion.maps.map((m) => ({ size: m.size, max: m.max, drop: Array.from(m.drop) })) },
    }),
    // images: base64 float32 (n, 28, 28); every layer's output for each, concatenated image
    // by image, layer by layer, as base64 float32; knocked: {layer: [units]}
    forwardBatch(images, n, knocked) {
      const x = DrawNet.floats(images), parts = [];
      for (let i = 0; i < n; i++) {
        for (const y of net.forward(x.subarray(i * F * F, (i + 1) * F * F), knockedFrom(knocked)).outputs) parts.push(y);
      }
      const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let at = 0;
      for (const p of parts) { all.set(p, at); at += p.length; }
      return b64(new Uint8Array(all.buffer));
    },
    toField: (ink, height, width) => Array.from(DrawNet.toMnistField(ink, height, width) || []),
    activate: (name, values) => Array.from(DrawNet.activate(name, Float64Array.from(values), values.length)),
    takeSample,
    toggle,
    // milliseconds: the median forward pass of `repeats` on the current input, and one occlusion
    bench(repeats = 30) {
      const x = state.input || new Float32Array(F * F), times = [];
      for (let i = 0; i < repeats + 3; i++) {
        const t = performance.now();
        net.forward(x, state.knocked);
        times.push(performance.now() - t);
      }
      const sorted = times.slice(3).sort((a, b) => a - b);
      let t = performance.now();
      net.occlusion(x, 0, state.knocked);
      const occlusionMs = performance.now() - t;
      t = performance.now();
      render(); // what every frame of drawing adds: the input, the bars, every layer's grid
      return { forward_ms: sorted[Math.floor(sorted.length / 2)], forward_min_ms: sorted[0],
        occlusion_ms: occlusionMs, render_ms: performance.now() - t, repeats };
    },
  };
  // Open on a test image, as the take button does: every grid and bar shows something at once.
  takeSample(+$("sample-index").value);
})();
