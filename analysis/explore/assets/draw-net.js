// mnist_cnn explorer, draw page: the arithmetic. No DOM, no libraries, no network.
//
// * toMnistField: a line-by-line port of mnist_cnn/preprocess.py (to_mnist_field).
// * Net: the forward pass of a model exported by analysis/explore/draw.py (its layer list and
//   float32 weights), over Float32Array in Keras' channels-last (HWC) order: conv with any
//   kernel, stride and padding, max/avg pooling, batch norm at inference, dropout (identity),
//   flatten, global pooling, dense, and the activations of ACTIVATIONS.
// * occlusion: how much covering each part of the image lowers a class's probability.
// Checked against Keras and against the Python preprocessing by tests/test_draw_browser.py.
"use strict";

const DrawNet = (function () {
  // ---------------------------------------------------------------- preprocessing
  const FIELD = 28; // the side of an MNIST image
  const BOX = 20; // the side of the square the ink's bounding box is scaled into

  function roundHalfUp(x) {
    return Math.floor(x + 0.5);
  }

  // (sizeOut, sizeIn) matrix of area-average resampling along one axis, row-major.
  function areaWeights(sizeIn, sizeOut) {
    const step = sizeIn / sizeOut;
    const weights = new Float64Array(sizeOut * sizeIn);
    for (let i = 0; i < sizeOut; i++) {
      const lo = i * step, hi = (i + 1) * step;
      for (let j = Math.floor(lo); j < Math.min(Math.ceil(hi), sizeIn); j++) {
        weights[i * sizeIn + j] = (Math.min(hi, j + 1) - Math.max(lo, j)) / step;
      }
    }
    return weights;
  }

  // ink: numbers in [0, 1], row-major (height, width). Returns Float32Array(28 * 28), or null
  // when there is no ink above threshold (Python raises "the image is blank").
  function toMnistField(ink, height, width, threshold = 0) {
    const clip = (v) => Math.min(1, Math.max(0, v));
    let r0 = -1, r1 = -1, c0 = width, c1 = -1;
    for (let r = 0; r < height; r++) {
      for (let c = 0; c < width; c++) {
        if (clip(ink[r * width + c]) > threshold) {
          if (r0 < 0) r0 = r;
          r1 = r;
          if (c < c0) c0 = c;
          if (c > c1) c1 = c;
        }
      }
    }
    if (r0 < 0) return null;
    const h = r1 - r0 + 1, w = c1 - c0 + 1;
    const scale = BOX / Math.max(h, w);
    const newH = Math.max(1, Math.min(BOX, roundHalfUp(h * scale)));
    const newW = Math.max(1, Math.min(BOX, roundHalfUp(w * scale)));
    const wh = areaWeights(h, newH), ww = areaWeights(w, newW);
    // small = wh @ box @ ww.T, evaluated left to right as NumPy does
    const rowsDone = new Float64Array(newH * w); // wh @ box
    for (let i = 0; i < newH; i++) {
      for (let k = 0; k < h; k++) {
        const a = wh[i * h + k];
        if (a === 0) continue;
        const base = (r0 + k) * width + c0;
        for (let c = 0; c < w; c++) rowsDone[i * w + c] += a * clip(ink[base + c]);
      }
    }
    const field = new Float64Array(FIELD * FIELD);
    const top = Math.floor((FIELD - newH) / 2), left = Math.floor((FIELD - newW) / 2);
    for (let i = 0; i < newH; i++) {
      for (let j = 0; j < newW; j++) {
        let s = 0;
        for (let c = 0; c < w; c++) s += rowsDone[i * w + c] * ww[j * w + c];
        field[(top + i) * FIELD + left + j] = s;
      }
    }
    let mass = 0, sumY = 0, sumX = 0;
    for (let r = 0; r < FIELD; r++) {
      for (let c = 0; c < FIELD; c++) {
        const v = field[r * FIELD + c];
        mass += v;
        sumY += v * r;
        sumX += v * c;
      }
    }
    const middle = (FIELD - 1) / 2;
    return shift(field, roundHalfUp(middle - sumY / mass), roundHalfUp(middle - sumX / mass));
  }

  // image moved by whole pixels, zeros shifted in, what leaves the field dropped
  function shift(image, down, right) {
    const out = new Float32Array(FIELD * FIELD);
    for (let r = 0; r < FIELD; r++) {
      const from = r - down;
      if (from < 0 || from >= FIELD) continue;
      for (let c = 0; c < FIELD; c++) {
        const src = c - right;
        if (src >= 0 && src < FIELD) out[r * FIELD + c] = image[from * FIELD + src];
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- activations (Keras 3)
  function erf(x) {
    // Numerical Recipes' erfc (Chebyshev fit), fractional error below 1.2e-7 everywhere
    const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
    const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t *
      (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t *
      (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? 1 - r : r - 1;
  }
  const sigmoid = (x) => 1 / (1 + Math.exp(-x));
  const ACTIVATIONS = {
    linear: null,
    relu: (x) => (x > 0 ? x : 0),
    relu6: (x) => Math.min(Math.max(x, 0), 6),
    sigmoid,
    tanh: Math.tanh,
    elu: (x) => (x > 0 ? x : Math.expm1(x)),
    selu: (x) => 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * Math.expm1(x)),
    softplus: (x) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x))),
    softsign: (x) => x / (1 + Math.abs(x)),
    silu: (x) => x * sigmoid(x),
    gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    leaky_relu: (x) => (x > 0 ? x : 0.2 * x),
    hard_sigmoid: (x) => Math.min(Math.max(x + 3, 0), 6) / 6,
    exponential: Math.exp,
    celu: (x) => (x > 0 ? x : Math.expm1(x)),
    hard_shrink: (x) => (Math.abs(x) > 0.5 ? x : 0),
    hard_silu: (x) => x * Math.min(Math.max(x + 3, 0), 6) / 6,
    hard_tanh: (x) => Math.min(Math.max(x, -1), 1),
    log_sigmoid: (x) => -(x < 0 ? -x + Math.log1p(Math.exp(x)) : Math.log1p(Math.exp(-x))),
    mish: (x) => x * Math.tanh(x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x))),
    soft_shrink: (x) => (x > 0.5 ? x - 0.5 : x < -0.5 ? x + 0.5 : 0),
    sparse_plus: (x) => (x <= -1 ? 0 : x >= 1 ? x : (x + 1) * (x + 1) / 4),
    sparse_sigmoid: (x) => (x <= -1 ? 0 : x >= 1 ? 1 : (x + 1) / 2),
    squareplus: (x) => (x + Math.sqrt(x * x + 4)) / 2,
    tanh_shrink: (x) => x - Math.tanh(x),
    softmax: "softmax",
    log_softmax: "log_softmax",
  };

  // softmax or its logarithm over the channels of every pixel
  function softmaxInPlace(a, channels, log) {
    for (let base = 0; base < a.length; base += channels) {
      let top = -Infinity, sum = 0;
      for (let c = 0; c < channels; c++) top = Math.max(top, a[base + c]);
      for (let c = 0; c < channels; c++) sum += Math.exp(a[base + c] - top);
      for (let c = 0; c < channels; c++) {
        a[base + c] = log ? a[base + c] - top - Math.log(sum) : Math.exp(a[base + c] - top) / sum;
      }
    }
  }

  function activate(name, a, channels) {
    const f = ACTIVATIONS[name];
    if (f === undefined) throw new Error("draw page: unknown activation " + name);
    if (typeof f === "string") softmaxInPlace(a, channels, f === "log_softmax");
    else if (f) for (let i = 0; i < a.length; i++) a[i] = f(a[i]);
    return a;
  }

  // ---------------------------------------------------------------- the network
  function bytes(b64) {
    const text = atob(b64), out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  function floats(b64) {
    return new Float32Array(bytes(b64).buffer);
  }

  // TensorFlow's rule: 'same' gives ceil(size / stride) outputs, the odd padding goes after
  function geometry(size, k, s, padding) {
    if (padding === "same") {
      const out = Math.ceil(size / s);
      return { out, before: Math.floor(Math.max((out - 1) * s + k - size, 0) / 2) };
    }
    return { out: Math.floor((size - k) / s) + 1, before: 0 };
  }

  // conv and pools compute the output pixels of region R = [row0, row1, col0, col1]
  // (inclusive), all of them by default; the occlusion recomputes only what a patch changes.
  const everything = (L) => [0, L.shape[0] - 1, 0, L.shape[1] - 1];

  function conv(L, x, y, R = everything(L)) {
    const [H, W, C] = L.inShape, K = L.shape[2], OW = L.shape[1];
    const [kh, kw] = L.kernel, [sh, sw] = L.strides, w = L.w, acc = L.acc;
    for (let oy = R[0]; oy <= R[1]; oy++) {
      for (let ox = R[2]; ox <= R[3]; ox++) {
        acc.set(L.b);
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - L.padTop + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - L.padLeft + kx;
            if (ix < 0 || ix >= W) continue;
            const xBase = (iy * W + ix) * C, wBase = (ky * kw + kx) * C * K;
            for (let c = 0; c < C; c++) {
              const v = x[xBase + c];
              if (v === 0) continue; // after a ReLU most inputs are zero
              const wb = wBase + c * K;
              for (let k = 0; k < K; k++) acc[k] += v * w[wb + k];
            }
          }
        }
        y.set(acc, (oy * OW + ox) * K);
      }
    }
  }

  function pool(L, x, y, isMax, R = everything(L)) {
    const [H, W, C] = L.inShape, OW = L.shape[1];
    const [kh, kw] = L.kernel, [sh, sw] = L.strides;
    for (let oy = R[0]; oy <= R[1]; oy++) {
      for (let ox = R[2]; ox <= R[3]; ox++) {
        const yBase = (oy * OW + ox) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity, sum = 0, count = 0;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - L.padTop + ky;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw - L.padLeft + kx;
              if (ix < 0 || ix >= W) continue;
              const v = x[(iy * W + ix) * C + c];
              if (v > best) best = v;
              sum += v;
              count++; // TensorFlow's 'same' average counts only the pixels inside
            }
          }
          y[yBase + c] = isMax ? best : sum / count;
        }
      }
    }
  }

  // The output pixels of a conv or pool that read input region R; null if none.
  function reach(L, R) {
    const rows = span(R[0], R[1], L.kernel[0], L.strides[0], L.padTop, L.shape[0]);
    const cols = span(R[2], R[3], L.kernel[1], L.strides[1], L.padLeft, L.shape[1]);
    return rows && cols ? rows.concat(cols) : null;
  }

  function span(first, last, k, s, before, size) {
    const lo = Math.max(0, Math.ceil((first + before - k + 1) / s));
    const hi = Math.min(size - 1, Math.floor((last + before) / s));
    return lo <= hi ? [lo, hi] : null;
  }

  function globalPool(L, x, y, isMax) {
    const [H, W, C] = L.inShape;
    for (let c = 0; c < C; c++) {
      let best = -Infinity, sum = 0;
      for (let p = 0; p < H * W; p++) {
        const v = x[p * C + c];
        if (v > best) best = v;
        sum += v;
      }
      y[c] = isMax ? best : sum / (H * W);
    }
  }

  function dense(L, x, y) {
    const n = L.inShape[0], K = L.shape[0], w = L.w, acc = L.acc;
    acc.set(L.b);
    for (let i = 0; i < n; i++) {
      const v = x[i];
      if (v === 0) continue;
      const base = i * K;
      for (let k = 0; k < K; k++) acc[k] += v * w[base + k];
    }
    y.set(acc);
  }

  const RUN = {
    conv, dense,
    max_pool: (L, x, y, R) => pool(L, x, y, true, R),
    avg_pool: (L, x, y, R) => pool(L, x, y, false, R),
    global_max_pool: (L, x, y) => globalPool(L, x, y, true),
    global_avg_pool: (L, x, y) => globalPool(L, x, y, false),
    batch_norm: (L, x, y) => {
      const C = L.shape[L.shape.length - 1];
      for (let i = 0; i < x.length; i++) y[i] = x[i] * L.scale[i % C] + L.shift[i % C];
    },
    dropout: (L, x, y) => y.set(x), // identity at inference
    flatten: (L, x, y) => y.set(x), // HWC order, as Keras flattens channels-last maps
  };

  // The exported model (window.DRAW_MODEL) made runnable; shapes are recomputed here and
  // must equal the exported (Keras) ones.
  function Net(model) {
    let shape = model.input_shape.slice();
    this.model = model;
    this.layers = model.layers.map((spec) => {
      if (!(spec.kind in RUN)) throw new Error("draw page: unknown layer kind " + spec.kind);
      const L = Object.assign({}, spec, { inShape: shape });
      let out;
      L.windowed = spec.kind === "conv" || spec.kind === "max_pool" || spec.kind === "avg_pool";
      if (L.windowed) {
        const gy = geometry(shape[0], spec.kernel[0], spec.strides[0], spec.padding);
        const gx = geometry(shape[1], spec.kernel[1], spec.strides[1], spec.padding);
        L.padTop = gy.before;
        L.padLeft = gx.before;
        out = [gy.out, gx.out, spec.kind === "conv" ? spec.shape[2] : shape[2]];
      } else if (spec.kind === "flatten") out = [shape.reduce((a, b) => a * b, 1)];
      else if (spec.kind.startsWith("global")) out = [shape[2]];
      else if (spec.kind === "dense") out = [spec.shape[0]];
      else out = shape.slice();
      if (out.join() !== spec.shape.join()) {
        throw new Error("draw page: layer " + spec.name + " computes shape " + out +
          ", Keras says " + spec.shape);
      }
      for (const key of ["w", "b", "scale", "shift"]) if (spec[key]) L[key] = floats(spec[key]);
      if (L.w) L.acc = new Float64Array(out[out.length - 1]); // accumulate in double
      L.shape = out;
      L.size = out.reduce((a, b) => a * b, 1);
      L.channels = out[out.length - 1];
      L.spatial = L.size / L.channels;
      shape = out;
      return L;
    });
    this.output = this.layers[this.layers.length - 1];
    this.classes = this.output.channels;
  }

  // Every layer's output for one image x (Float32Array(784) in [0, 1]); knocked: optional
  // {layerName: Set of unit indices} zeroed after their layer (activation included).
  // Returns {outputs: [Float32Array per layer], probs: Float32Array}; fresh arrays each call.
  Net.prototype.forward = function (x, knocked) {
    return this.forwardChanged(x, knocked, null, null);
  };

  // The same, for an image that differs from the one `base` (forward's result) was computed on
  // only inside input region R = [row0, row1, col0, col1]: conv and pool layers recompute only
  // the pixels that read the region, and copy the rest from `base`.
  Net.prototype.forwardChanged = function (x, knocked, base, R) {
    let input = x;
    const outputs = [];
    this.layers.forEach((L, i) => {
      let y;
      const local = R && L.shape.length === 3;
      if (local && L.windowed) {
        R = reach(L, R);
        y = new Float32Array(base.outputs[i]);
        if (R) RUN[L.kind](L, input, y, R);
      } else {
        y = new Float32Array(L.size);
        RUN[L.kind](L, input, y); // element-wise layers, and everything after a flatten
        if (!local) R = null;
      }
      if (L.activation) {
        if (local && R) {
          for (let r = R[0]; r <= R[1]; r++) {
            const row = (r * L.shape[1]) * L.channels;
            activate(L.activation, y.subarray(row + R[2] * L.channels, row + (R[3] + 1) * L.channels), L.channels);
          }
        } else if (!local) activate(L.activation, y, L.channels);
      }
      const off = knocked && knocked[L.name];
      if (off && off.size) {
        for (const c of off) for (let p = 0; p < L.spatial; p++) y[p * L.channels + c] = 0;
      }
      outputs.push(y);
      input = y;
    });
    const last = outputs[outputs.length - 1];
    const probs = this.output.activation === "softmax" ? last : activate("softmax", last.slice(), this.classes);
    return { outputs, probs };
  };

  // How much covering each part of x with paper (zeros) lowers the probability of class k:
  // for each patch size, a square patch slides by `stride`; each pixel gets the mean drop over
  // the patches that cover it. Returns [{size, drop: Float32Array(784), max}].
  Net.prototype.occlusion = function (x, k, knocked, sizes = [4, 8], stride = 2) {
    const full = this.forward(x, knocked), base = full.probs[k];
    return sizes.map((size) => {
      const total = new Float64Array(FIELD * FIELD), count = new Float64Array(FIELD * FIELD);
      const covered = new Float32Array(x);
      for (let top = 0; top + size <= FIELD; top += stride) {
        for (let left = 0; left + size <= FIELD; left += stride) {
          covered.set(x);
          for (let r = top; r < top + size; r++) covered.fill(0, r * FIELD + left, r * FIELD + left + size);
          const changed = [top, top + size - 1, left, left + size - 1];
          const drop = base - this.forwardChanged(covered, knocked, full, changed).probs[k];
          for (let r = top; r < top + size; r++) {
            for (let c = left; c < left + size; c++) {
              total[r * FIELD + c] += drop;
              count[r * FIELD + c] += 1;
            }
          }
        }
      }
      const drop = new Float32Array(FIELD * FIELD);
      let max = 0;
      for (let i = 0; i < drop.length; i++) {
        drop[i] = count[i] ? total[i] / count[i] : 0;
        max = Math.max(max, Math.abs(drop[i]));
      }
      return { size, drop, max };
    });
  };

  return { FIELD, toMnistField, activate, ACTIVATIONS, Net, floats, bytes };
})();
