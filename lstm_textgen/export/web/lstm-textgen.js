/* lstm-textgen's web engine: a trained run's tokenizer, LSTM/GRU stepper and decoding, in plain JavaScript (no
   library, no build step). It ports the Python: text/words.py and text/bpe.py (encode, decode a token at a time),
   model/stepper.py (the numpy stepper), generation/rules.py, decode.py and sample.py (the sampling rules, the stop
   rules, greedy decoding) and generation/interactive.py (suggestions). Greedy text equals
   `lstm-textgen generate --greedy` for the same seed.

   It reads model.json, tokenizer.json and weights.bin beside this script (fetch), or, when the page is opened from
   disk (file://, where fetch() of local files is refused), data.js beside it. The API:
     await lstmTextgen.ready                      the model loaded (rejects with the reason when it cannot be)
     await lstmTextgen.generate(seed, n, opts)    the continuation of seed (the text generate prints after it);
                                                  opts: greedy, temperature, top_k, top_p, min_p, the run's other
                                                  generate settings, onPiece(text) to stream, signal to stop
     lstmTextgen.suggest(text, k)                 the k likeliest next words: [{token, probability, text}]
     lstmTextgen.encode(text), decode(ids), logits(ids), info */
(function () {
"use strict";
const PAD = "<pad>", UNK = "<unk>", PAD_ID = 0, UNK_ID = 1, BANNED = [PAD_ID, UNK_ID];
const SCRIPT = document.currentScript;
const BASE = new URL(".", SCRIPT && SCRIPT.src ? SCRIPT.src : location.href);
const MAX_COMPLETION = 8;  // tokens a subword suggestion may take to reach a word boundary (interactive.py)
const SNAPSHOT_EVERY = 32;  // the prefix cache keeps the recurrent state every this many tokens

// ---------------------------------------------------------------- text: word, whitespace and char levels
// Python's \w on str is a letter, a number or "_"; its \s is str.isspace() (which JS's \s is not quite).
const W = "\\p{L}\\p{N}_";
const S = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const CLITIC = `['’](?:s|ll|re|ve|d|m)(?![${W}'’])`;
const WORD_RE = new RegExp(  // words.py WORD_RE
  "(?<nl>\\n)" +
  `|(?<open2>(?<![${W}])"(?=[${W}'(\\[]))` +
  `|(?<open1>(?<![${W}'’])'(?=[${W}]))` +
  `|[${W}]+?(?=n['’]t(?![${W}'’]))` +
  `|n['’]t(?![${W}'’])` +
  `|${CLITIC}` +
  `|[${W}]+(?:-[${W}]+|['’](?!(?:s|ll|re|ve|d|m)(?![${W}'’]))[${W}]+)*` +
  `|(?<mark>[^${W}${S}])\\k<mark>*`, "gu");
const WHITESPACE_RE = new RegExp(`\\n|[^${S}]+`, "gu");
const SURFACE = new Map([["``", '"'], ["`", "'"], ["''", '"']]);
const CLITIC_RE = new RegExp(`^(?:${CLITIC}|n['’]t)$`, "iu");
const CLOSING_RE = /^(?:[,.;:!?)\]}%…”’'"]+|''|--+)$/u;
const OPENING_RE = /^(?:[(\[{$¿¡“‘]|``|`|--+)$/u;

class WordTokenizer {
  constructor(raw) {
    this.level = raw.level; this.lowercase = raw.lowercase; this.vocab = raw.vocab; this.subword = false;
    this.index = new Map(this.vocab.map((token, i) => [token, i]));
    if (this.index.has(PAD)) this.index.set(PAD, UNK_ID);  // a typed "<pad>" is unknown
  }
  get spacesAreText() { return this.level === "char"; }
  get unit() { return this.level === "char" ? "character" : "word"; }
  split(text) {
    if (this.lowercase) text = text.toLowerCase();
    if (this.level === "char") return Array.from(text);
    if (this.level === "whitespace") return Array.from(text.matchAll(WHITESPACE_RE), (m) => m[0]);
    return Array.from(text.matchAll(WORD_RE), (m) =>
      m.groups.open2 !== undefined ? "``" : m.groups.open1 !== undefined ? "`" : m[0]);
  }
  encode(text) { return this.split(text).map((t) => this.index.get(t) ?? UNK_ID); }
  unknown(text) {
    return [...new Set(this.split(text).filter((t) => !this.index.has(t) || t === PAD || t === UNK))];
  }
  detokenizer() { return new Detokenizer(this); }
  spell(ids) { return ids.map((i) => this.vocab[i]).join(""); }
  wordDone() { return true; }
}

class Detokenizer {  // words.py Detokenizer: spacing and quotes, a token at a time
  constructor(tokenizer) { this.tokenizer = tokenizer; this.glueNext = true; }
  piece(id) {
    const vocab = this.tokenizer.vocab, token = id >= 0 && id < vocab.length ? vocab[id] : UNK;
    if (token === PAD) return "";
    if (this.tokenizer.level === "char") return token !== UNK ? token : "?";
    if (token === "\n") { this.glueNext = true; return "\n"; }
    if (this.tokenizer.level === "whitespace") {
      const space = !this.glueNext;
      this.glueNext = false;
      return (space ? " " : "") + token;
    }
    const space = !this.glueNext && !(CLOSING_RE.test(token) || CLITIC_RE.test(token));
    this.glueNext = OPENING_RE.test(token);
    return (space ? " " : "") + (SURFACE.get(token) ?? token);
  }
  peek(id) { const glue = this.glueNext, text = this.piece(id); this.glueNext = glue; return text; }
  flush() { return ""; }
}

// ---------------------------------------------------------------- text: byte-level BPE (Hugging Face's)
const PRE_TOKEN_RE = new RegExp("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\p{White_Space}\\p{L}\\p{N}]+" +
                                "|\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}+", "gu");  // GPT-2's
const ENCODER = new TextEncoder();

function byteChars() {  // GPT-2's bytes_to_unicode: byte -> the character that stands for it
  const chars = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const kept = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(kept ? b : 256 + extra++);
  }
  return chars;
}

class BPETokenizer {
  constructor(raw) {
    const model = raw.huggingface.model, offset = raw.id_offset;
    this.level = "bpe"; this.lowercase = raw.lowercase; this.subword = true; this.offset = offset;
    this.ids = new Map(Object.entries(model.vocab));
    this.ranks = new Map(model.merges.map((m, rank) => [Array.isArray(m) ? m.join(" ") : m, rank]));
    this.ignoreMerges = Boolean(model.ignore_merges);
    this.chars = byteChars();
    const byteOf = new Map(this.chars.map((c, b) => [c, b]));
    const size = this.ids.size + offset;
    this.bytes = new Array(size).fill(new Uint8Array(0));
    for (const [token, id] of this.ids) this.bytes[id + offset] = Uint8Array.from(token, (c) => byteOf.get(c));
    this.vocab = this.bytes.map((b, i) => i === PAD_ID ? PAD : i === UNK_ID ? UNK : new TextDecoder().decode(b));
    this.cache = new Map();
  }
  get spacesAreText() { return true; }
  get unit() { return "piece"; }
  encode(text) {
    if (this.lowercase) text = text.toLowerCase();
    const out = [];
    for (const m of text.matchAll(PRE_TOKEN_RE)) {
      const word = Array.from(ENCODER.encode(m[0]), (b) => this.chars[b]).join("");
      let ids = this.cache.get(word);
      if (ids === undefined) {
        ids = this.merge(word).map((token) => this.ids.get(token) + this.offset);
        if (this.cache.size > 50000) this.cache.clear();
        this.cache.set(word, ids);
      }
      out.push(...ids);
    }
    return out;
  }
  merge(word) {  // the pair of lowest rank first, the leftmost of equal pairs, until no pair merges
    if (this.ignoreMerges && this.ids.has(word)) return [word];
    const symbols = Array.from(word);
    for (;;) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(symbols[i] + " " + symbols[i + 1]);
        if (rank !== undefined && rank < bestRank) { bestRank = rank; best = i; }
      }
      if (best < 0) return symbols;
      symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
    }
  }
  unknown() { return []; }
  detokenizer() { return new ByteDetokenizer(this); }
  joined(ids) {
    const parts = ids.map((i) => this.bytes[i] || new Uint8Array(0));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  spell(ids) { return new TextDecoder().decode(this.joined(ids)); }
  wordDone(ids, following) {  // bpe.py word_done; "ignore" is read as replacement characters dropped
    const spelled = this.joined(ids), text = decodeIgnoring(spelled);
    if (!text.replace(/^ +| +$/g, "")) return false;
    if (!/[\p{L}\p{N}]/u.test(text)) return true;
    if (following === null) return false;
    const after = decodeIgnoring(this.joined([...ids, following])).slice(text.length);
    if (!after) return false;
    return !(/^[\p{L}\p{N}]/u.test(after) || /^['’]\p{L}/u.test(after));
  }
}

function decodeIgnoring(bytes) { return new TextDecoder().decode(bytes).replace(/\uFFFD/g, ""); }

class ByteDetokenizer {  // bpe.py ByteDetokenizer: a character split over tokens comes out once whole
  constructor(tokenizer) { this.bytes = tokenizer.bytes; this.decoder = new TextDecoder(); this.ids = []; }
  piece(id) {
    this.ids.push(id);
    return this.decoder.decode(this.bytes[id] || new Uint8Array(0), {stream: true});
  }
  peek(id) {
    const copy = new ByteDetokenizer({bytes: this.bytes});
    for (const i of this.ids) copy.piece(i);
    return copy.piece(id);
  }
  flush() { return this.decoder.decode(); }
}

function makeTokenizer(raw) { return raw.level === "bpe" ? new BPETokenizer(raw) : new WordTokenizer(raw); }

// ---------------------------------------------------------------- the weights and the stepper
function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function readTensor(entry, buffer) {  // float32 storage, dequantized as web.py's read_tensor does
  const count = entry.shape.reduce((a, b) => a * b, 1), view = new DataView(buffer), out = new Float32Array(count);
  if (entry.dtype === "float32") for (let i = 0; i < count; i++) out[i] = view.getFloat32(entry.offset + 4 * i, true);
  else if (entry.dtype === "float16") {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(entry.offset + 2 * i, true));
  } else if (entry.dtype === "int8") {
    const columns = entry.shape[entry.shape.length - 1];
    const scale = Array.from({length: columns}, (_, j) => view.getFloat32(entry.scale_offset + 4 * j, true));
    for (let i = 0; i < count; i++) out[i] = view.getInt8(entry.offset + i) * scale[i % columns];
  } else throw new Error("model.json names an unknown tensor type " + entry.dtype);
  return out;
}

const ACTIVATIONS = {
  tanh: Math.tanh, sigmoid: (x) => 0.5 * Math.tanh(0.5 * x) + 0.5, relu: (x) => Math.max(x, 0),
  linear: (x) => x, hard_sigmoid: (x) => Math.min(Math.max(x / 6 + 0.5, 0), 1),
};

function activation(name) {
  if (!(name in ACTIVATIONS)) throw new Error("model.json names an activation the engine lacks: " + name);
  return ACTIVATIONS[name];
}

// A (rows, cols) weight matrix kept column by column, so that x @ W is one dot product per column: reading each
// column's weights in order is about twice as fast in V8 as adding x[i] times row i to every output.
class Matrix {
  constructor(w, rows, cols) {
    this.rows = rows; this.cols = cols; this.t = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) this.t[j * rows + i] = w[i * cols + j];
  }
  mul(x, out, from = 0, to = this.cols) {  // out[j - from] += (x @ W)[j] for the columns j in [from, to), in doubles
    const t = this.t, rows = this.rows, even = rows - (rows % 2);
    for (let j = from; j < to; j++) {
      const base = j * rows;
      let a = 0, b = 0;
      for (let i = 0; i < even; i += 2) { a += x[i] * t[base + i]; b += x[i + 1] * t[base + i + 1]; }
      if (even < rows) a += x[even] * t[base + even];
      out[j - from] += a + b;
    }
    return out;
  }
}

class Recurrent {  // stepper.py Recurrent.step: Keras' LSTM gate order i, f, c, o; GRU with or without reset_after
  constructor(spec, tensors) {
    const [kernel, recurrent, bias] = tensors, g = (spec.kind === "LSTM" ? 4 : 3) * spec.units;
    this.kernel = new Matrix(kernel, kernel.length / g, g);
    this.recurrent = new Matrix(recurrent, spec.units, g);
    this.bias = bias;
    this.kind = spec.kind; this.units = spec.units; this.resetAfter = spec.kind === "GRU" && spec.reset_after;
    this.act = activation(spec.activation); this.recAct = activation(spec.recurrent_activation);
    this.gates = (this.kind === "LSTM" ? 4 : 3) * this.units;
  }
  zero() { return this.kind === "LSTM" ? [new Float64Array(this.units), new Float64Array(this.units)]
                                        : [new Float64Array(this.units)]; }
  step(x, state) {
    const u = this.units, g = this.gates, projected = this.kernel.mul(x, new Float64Array(g));
    for (let j = 0; j < g; j++) projected[j] += this.bias[j];
    const h = state[0], next = new Float64Array(u);
    if (this.kind === "LSTM") {
      const z = this.recurrent.mul(h, projected), c = new Float64Array(u);
      for (let j = 0; j < u; j++) {
        c[j] = this.recAct(z[u + j]) * state[1][j] + this.recAct(z[j]) * this.act(z[2 * u + j]);
        next[j] = this.recAct(z[3 * u + j]) * this.act(c[j]);
      }
      return [next, c];
    }
    if (this.resetAfter) {
      const rec = this.recurrent.mul(h, Float64Array.from(this.bias.subarray(g, 2 * g)));
      for (let j = 0; j < u; j++) {
        const z = this.recAct(projected[j] + rec[j]), r = this.recAct(projected[u + j] + rec[u + j]);
        next[j] = z * h[j] + (1 - z) * this.act(projected[2 * u + j] + r * rec[2 * u + j]);
      }
      return [next];
    }
    const gatesIn = new Float64Array(2 * u), candidate = new Float64Array(u), rh = new Float64Array(u);
    this.recurrent.mul(h, gatesIn, 0, 2 * u);
    const r = new Float64Array(u);
    for (let j = 0; j < u; j++) { r[j] = this.recAct(projected[u + j] + gatesIn[u + j]); rh[j] = r[j] * h[j]; }
    this.recurrent.mul(rh, candidate, 2 * u, g);
    for (let j = 0; j < u; j++) {
      const z = this.recAct(projected[j] + gatesIn[j]);
      next[j] = z * h[j] + (1 - z) * this.act(projected[2 * u + j] + candidate[j]);
    }
    return [next];
  }
}

class Stepper {  // stepper.py Stepper: advance() one token with the state carried, head() the logits
  constructor(model, buffer) {
    const tensors = (layer) => layer.tensors.map((name) => readTensor(model.tensors[name], buffer));
    const [first, ...rest] = model.layers, dense = rest.slice(-2);
    this.embedding = tensors(first)[0];
    this.dim = model.tensors[first.tensors[0]].shape[1];
    this.recurrent = rest.slice(0, -2).map((layer) => new Recurrent(layer, tensors(layer)));
    const [hiddenKernel, hiddenBias] = tensors(dense[0]), [outKernel, outBias] = tensors(dense[1]);
    this.hiddenKernel = new Matrix(hiddenKernel, hiddenKernel.length / dense[0].units, dense[0].units);
    this.outKernel = new Matrix(outKernel, dense[0].units, dense[1].units);
    this.hiddenBias = hiddenBias; this.outBias = outBias;
    this.hiddenUnits = dense[0].units; this.vocabSize = dense[1].units;
    this.hiddenAct = activation(dense[0].activation);
    this.masked = new Set(model.masked_ids);
  }
  zero() { return this.recurrent.map((layer) => layer.zero()); }
  advance(state, id) {  // -> the new state; a masked id keeps it
    if (this.masked.has(id)) return state;
    let x = this.embedding.subarray(id * this.dim, (id + 1) * this.dim);
    return this.recurrent.map((layer, i) => { const next = layer.step(x, state[i]); x = next[0]; return next; });
  }
  head(state) {  // the last layer's h -> logits (before the softmax)
    const h = state[state.length - 1][0], hidden = Float64Array.from(this.hiddenBias);
    this.hiddenKernel.mul(h, hidden);
    for (let j = 0; j < hidden.length; j++) hidden[j] = this.hiddenAct(hidden[j]);
    return this.outKernel.mul(hidden, Float64Array.from(this.outBias));
  }
}

class PrefixCache {  // the state after the ids last fed: typing on re-reads only what changed
  constructor(stepper) { this.stepper = stepper; this.ids = []; this.snapshots = [stepper.zero()]; this.last = null; }
  state(ids) {
    let same = 0;
    while (same < ids.length && same < this.ids.length && ids[same] === this.ids[same]) same++;
    let at, state;
    if (same === this.ids.length && this.last) { at = same; state = this.last; }
    else { at = Math.floor(same / SNAPSHOT_EVERY) * SNAPSHOT_EVERY; state = this.snapshots[at / SNAPSHOT_EVERY]; }
    this.snapshots.length = Math.floor(at / SNAPSHOT_EVERY) + 1;  // [i]: the state after i * SNAPSHOT_EVERY ids
    for (; at < ids.length; at++) {
      state = this.stepper.advance(state, ids[at]);
      if ((at + 1) % SNAPSHOT_EVERY === 0) this.snapshots.push(state);
    }
    this.ids = ids.slice(); this.last = state;
    return state;
  }
}

// ---------------------------------------------------------------- decoding: rules, stop, one row
class History {  // rules.py History: the penalties count only drawn tokens, the seed is text but not drawn
  constructor(ids, ngram) {
    this.ids = []; this.ngram = ngram; this.seen = new Set(); this.followers = new Map(); this.drawn = null;
    for (const id of ids) this.append(id);
    this.drawn = new Map();
  }
  append(token) {
    const ids = this.ids, n = this.ngram;
    ids.push(token);
    this.seen.add(token);
    if (n > 1 && ids.length >= n) {
      const key = ids.slice(ids.length - n, ids.length - 1).join(",");
      if (!this.followers.has(key)) this.followers.set(key, new Set());
      this.followers.get(key).add(token);
    }
    if (this.drawn) this.drawn.set(token, (this.drawn.get(token) || 0) + 1);
  }
  bans() {
    const n = this.ngram;
    if (n === 1) return [...this.seen];
    if (n === 0 || this.ids.length < n - 1) return [];
    return [...(this.followers.get(this.ids.slice(this.ids.length - n + 1).join(",")) || [])];
  }
}

function isGreedy(s) { return Boolean(s.greedy) || s.temperature === 0; }

function applyRules(logits, s, history) {  // rules.py apply_rules, in RULES order
  for (const id of BANNED) logits[id] = -Infinity;
  for (const [id, bias] of Object.entries(s.logit_bias || {})) logits[Number(id)] += bias;
  if (s.repetition_penalty !== 1 && history.ids.length) {
    for (const id of history.seen) {
      const v = logits[id];
      logits[id] = v > 0 ? v / s.repetition_penalty : v * s.repetition_penalty;
    }
  }
  if (s.frequency_penalty) for (const [id, count] of history.drawn) logits[id] -= s.frequency_penalty * count;
  if (s.presence_penalty) for (const id of history.drawn.keys()) logits[id] -= s.presence_penalty;
  if (s.no_repeat_ngram_size) {
    const bans = history.bans();
    if (bans.length && new Set([...bans, ...BANNED]).size < logits.length) {  // a tiny vocabulary may run out
      for (const id of bans) logits[id] = -Infinity;
    }
  }
  if (isGreedy(s)) return logits;
  const order = () => Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (s.top_k && s.top_k < logits.length) for (const id of order().slice(s.top_k)) logits[id] = -Infinity;
  if (s.min_p) {
    const floor = maxOf(logits) + Math.log(s.min_p);
    for (let i = 0; i < logits.length; i++) if (logits[i] < floor) logits[i] = -Infinity;
  }
  if (s.temperature !== 1) for (let i = 0; i < logits.length; i++) logits[i] *= 1 / s.temperature;
  if (s.top_p < 1) {
    const ids = order().filter((i) => logits[i] > -Infinity), w = weights(logits), total = w.reduce((a, b) => a + b);
    let mass = 0, kept = 0;
    while (kept < ids.length && mass / total < s.top_p) mass += w[ids[kept++]];
    for (const id of ids.slice(Math.max(kept, 1))) logits[id] = -Infinity;
  }
  return logits;
}

function maxOf(values) { let top = -Infinity; for (const v of values) if (v > top) top = v; return top; }

function weights(logits) { const top = maxOf(logits); return Array.from(logits, (v) => Math.exp(v - top)); }

function argmax(values) {  // numpy's: the first of equal maxima
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function draw(logits, s, history) {
  logits = applyRules(logits, s, history);
  if (isGreedy(s)) return argmax(logits);
  const w = weights(logits), target = Math.random() * w.reduce((a, b) => a + b);
  let sum = 0;
  for (let i = 0; i < w.length; i++) { sum += w[i]; if (sum > target && w[i] > 0) return i; }
  return w.findLastIndex((v) => v > 0);
}

class Stopper {  // decode.py Stopper (its window counted in code points, as Python's str is)
  constructor(s) {
    this.s = s; this.count = 0; this.newlines = 0; this.tail = [];
    this.keep = Math.max(0, ...s.stop.map((stop) => Array.from(stop).length));
  }
  done(piece) {
    this.count += 1;
    this.newlines += piece.split("\n").length - 1;
    const window = [...this.tail, ...Array.from(piece)];
    let from = window.length - this.keep;  // Python's window[len(window) - keep:], a negative start included
    if (from < 0) from = Math.max(window.length + from, 0);
    this.tail = this.keep ? window.slice(from) : [];
    if (this.count < this.s.min_length) return false;
    if (this.s.stop_newlines && this.newlines >= this.s.stop_newlines) return true;
    const text = window.join("");
    return this.s.stop.some((stop) => text.includes(stop));
  }
}

class Row {  // decode.py Row: one text being decoded
  constructor(tokenizer, ids, s) {
    this.s = s; this.history = new History(ids, s.no_repeat_ngram_size);
    this.detok = tokenizer.detokenizer();
    for (const id of ids) this.detok.piece(id);  // the seed primes spacing, quotes and partial characters
    this.stopper = new Stopper(s); this.pieces = []; this.finish = s.length > 0 ? null : "length";
  }
  take(token) {
    this.history.append(token);
    let piece = this.detok.piece(token);
    if (this.stopper.done(piece)) this.finish = "stop";
    else if (this.stopper.count >= this.s.length) this.finish = "length";
    if (this.finish) piece += this.detok.flush();
    this.pieces.push(piece);
    return piece;
  }
}

// ---------------------------------------------------------------- the engine: encode, generate, suggest
function checkText(text, what) {  // usertext.py check_text
  const bad = /[\x00-\x08\x0b-\x1f\x7f-\x9f]|\p{Cs}/u.exec(text.replace(/\r/g, "\n"));
  if (bad) throw new Error(`${what} holds a control character (U+${bad[0].codePointAt(0).toString(16).toUpperCase()
    .padStart(4, "0")}); give plain text`);
  return text.replace(/\r\n?/g, "\n");
}

class Engine {
  constructor(model, rawTokenizer, buffer) {
    if (model.format !== "lstm-textgen-web") throw new Error("model.json is not an lstm-textgen web export");
    if (buffer.byteLength !== model.bytes) {
      throw new Error(`weights.bin holds ${buffer.byteLength} bytes, model.json says ${model.bytes}; ` +
                      "copy the export again");
    }
    this.model = model; this.tokenizer = makeTokenizer(rawTokenizer); this.stepper = new Stepper(model, buffer);
    this.cache = new PrefixCache(this.stepper);
    this.info = {level: this.tokenizer.level, lowercase: this.tokenizer.lowercase, subword: this.tokenizer.subword,
                 vocab_size: model.vocab_size, quantize: model.quantize, generate: {...model.generate}};
  }
  encode(text) { return this.tokenizer.encode(text).map((id) => id === PAD_ID ? UNK_ID : id); }
  encodeSeed(seed, what) {  // sample.py encode_seed: refuses a seed the model cannot use
    seed = checkText(seed, what);
    if (!seed.trim() && (!this.tokenizer.spacesAreText || !seed)) {
      throw new Error(`${what} is empty; give some text to continue`);
    }
    const ids = this.encode(seed);
    if (ids.every((id) => id === UNK_ID)) {
      throw new Error(`no ${this.tokenizer.unit} of ${what} is in the model's vocabulary ` +
                      `(${this.tokenizer.unknown(seed).slice(0, 10).join(", ")}); use ${this.tokenizer.unit}s ` +
                      "from the training text");
    }
    return {seed, ids};
  }
  decode(ids) {
    const detok = this.tokenizer.detokenizer();
    return ids.map((i) => detok.piece(i)).join("") + detok.flush();
  }
  logits(ids) { return Array.from(this.stepper.head(this.cache.state(ids))); }
  settings(n, options) {
    const s = {...this.model.generate};
    for (const [key, value] of Object.entries(options || {})) {
      if (Object.hasOwn(s, key) && value !== undefined) s[key] = value;  // onPiece, signal: not settings
    }
    if (n !== undefined && n !== null) s.length = n;
    return s;
  }
  async generate(seed, n, options = {}) {
    const s = this.settings(n, options), {ids} = this.encodeSeed(seed, "the seed");
    const row = new Row(this.tokenizer, ids, s);
    let state = this.cache.state(ids), slice = performance.now();
    while (!row.finish) {
      if (options.signal && options.signal.aborted) break;
      const piece = row.take(draw(this.stepper.head(state), s, row.history));
      if (options.onPiece) options.onPiece(piece);
      if (!row.finish) state = this.stepper.advance(state, row.history.ids[row.history.ids.length - 1]);
      if (options.onPiece && performance.now() - slice > 30) {  // let the page paint and take a Stop
        await new Promise((resolve) => setTimeout(resolve));
        slice = performance.now();
      }
    }
    return row.pieces.join("");
  }
  suggest(text, k = 10) {  // serve's POST /v1/suggest: [{token, probability, text}], likeliest first
    const {ids} = this.encodeSeed(text, "the text"), state = this.cache.state(ids);
    const probs = softmax(this.stepper.head(state)), tokenizer = this.tokenizer;
    if (!tokenizer.subword) {
      const detok = tokenizer.detokenizer();
      for (const id of ids) detok.piece(id);
      return topIds(probs, k).map(([id, p]) => ({token: tokenizer.vocab[id], probability: p, text: detok.peek(id)}));
    }
    return this.wordChoices(state, probs, k).map(({text: t, probability}) => ({token: t, probability, text: t}));
  }
  wordChoices(state, probs, k) {  // interactive.py Continuation.choices: each candidate completed to a whole word
    const tokenizer = this.tokenizer, merged = new Map();
    for (const [first, p] of topIds(probs, 2 * k)) {
      const row = [first];
      let probability = p, rowState = state;
      for (let step = 1; step < MAX_COMPLETION && !tokenizer.wordDone(row, null); step++) {
        rowState = this.stepper.advance(rowState, row[row.length - 1]);
        const next = softmax(this.stepper.head(rowState)), [[token, q]] = topIds(next, 1);
        if (tokenizer.wordDone(row, token)) break;
        row.push(token);
        probability *= q;
      }
      const spelled = tokenizer.spell(row);
      if (merged.has(spelled)) merged.get(spelled).probability += probability;
      else merged.set(spelled, {text: spelled, probability, ids: row});
    }
    return [...merged.values()].sort((a, b) => b.probability - a.probability).slice(0, k);
  }
}

function softmax(logits) {
  const top = maxOf(logits), out = Array.from(logits, (v) => Math.exp(v - top)), sum = out.reduce((a, b) => a + b);
  return out.map((v) => v / sum);
}

function topIds(probs, k) {  // interactive.py top_ids: never <pad> or <unk>
  const ids = [];
  for (let i = 0; i < probs.length; i++) if (!BANNED.includes(i)) ids.push(i);
  ids.sort((a, b) => probs[b] - probs[a] || a - b);
  return ids.slice(0, Math.max(k, 0)).map((i) => [i, probs[i]]);
}

// ---------------------------------------------------------------- loading
function fromBase64(text) {
  const binary = atob(text), bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

async function fetched(name, read) {
  let reply;
  try { reply = await fetch(new URL(name, BASE)); } catch (e) {
    throw new Error(`cannot load ${name} beside the page (${e.message}); serve the export folder over http, ` +
                    "or open its index.html from disk with data.js beside it");
  }
  if (!reply.ok) throw new Error(`cannot load ${name} beside the page: ${reply.status} ${reply.statusText}`);
  return read(reply);
}

function fromDataScript() {
  const unpack = (data) => ({model: data.model, tokenizer: data.tokenizer, weights: fromBase64(data.weights)});
  if (window.LSTM_TEXTGEN_DATA) return Promise.resolve(unpack(window.LSTM_TEXTGEN_DATA));
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = new URL("data.js", BASE).href;
    script.onload = () => window.LSTM_TEXTGEN_DATA ? resolve(unpack(window.LSTM_TEXTGEN_DATA))
                                                   : reject(new Error("data.js holds no model; copy the export again"));
    script.onerror = () => reject(new Error("cannot load data.js beside the page: opened from disk, the page reads " +
      "the model from data.js; copy the whole export folder, or serve it over http"));
    document.head.appendChild(script);
  });
}

async function load() {
  const data = BASE.protocol === "file:" ? await fromDataScript() : {
    model: await fetched("model.json", (r) => r.json()), tokenizer: await fetched("tokenizer.json", (r) => r.json()),
    weights: await fetched("weights.bin", (r) => r.arrayBuffer())};
  return new Engine(data.model, data.tokenizer, data.weights);
}

let engine = null;
const api = {
  ready: null, error: null, info: null,
  generate: (seed, n, options) => engine.generate(seed, n, options),
  suggest: (text, k) => engine.suggest(text, k),
  encode: (text) => engine.encode(text),
  decode: (ids) => engine.decode(ids),
  logits: (ids) => engine.logits(ids),
};
api.ready = load().then((made) => { engine = made; api.info = made.info; return api; },
                        (e) => { api.error = e; throw e; });
api.ready.catch(() => {});  // the page shows the reason; an embedder awaits ready and sees it
window.lstmTextgen = api;
})();
