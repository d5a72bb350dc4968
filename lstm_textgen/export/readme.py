"""The README.md every export carries: what it holds, how to load it and step it in its runtime, its signatures'
tensors, and how closely it matched the run when it was written (all read from its manifest)."""
from __future__ import annotations

from lstm_textgen.outputs import STAMP

_LOAD = {
    "savedmodel": '''```python
import numpy as np, tensorflow as tf
model = tf.saved_model.load("saved_model")
step = model.signatures["step"]
state = {s.name: np.zeros((1, s.shape[1]), np.float32) for s in step.structured_input_signature[1].values()
         if s.name != "token"}
out = step(token=tf.constant([ID], tf.int32), **state)  # ID: a token id from tokenizer.json
probabilities = out["probabilities"]  # (1, vocab); the next state is out["h0_next"], out["c0_next"], ...
window = model.signatures["window"](tokens=tf.constant([[ID1, ID2, ID3]], tf.int32))["probabilities"]
```''',
    "tflite": '''```python
import numpy as np
from ai_edge_litert.interpreter import Interpreter  # pip install ai-edge-litert (or TensorFlow's tf.lite)
interpreter = Interpreter(model_path="model.tflite")
step = interpreter.get_signature_runner("step")
state = {name: np.zeros(d["shape"], np.float32) for name, d in step.get_input_details().items() if name != "token"}
out = step(token=np.array([ID], np.int32), **state)  # ID: a token id from tokenizer.json
probabilities = out["probabilities"]  # (1, vocab); feed out["h0_next"] as h0 (and so on) with the next token
```
On Android, the same signatures through LiteRT's `Interpreter.runSignature(inputs, outputs, "step")`.''',
    "onnx": '''```python
import numpy as np, onnxruntime as ort
step = ort.InferenceSession("step.onnx")
state = {i.name: np.zeros((1, i.shape[1]), np.float32) for i in step.get_inputs() if i.name != "token"}
names = [o.name for o in step.get_outputs()]
out = dict(zip(names, step.run(None, {"token": np.array([ID], np.int32), **state})))  # ID: from tokenizer.json
probabilities = out["probabilities"]  # (1, vocab); feed out["h0_next"] as h0 (and so on) with the next token
window = ort.InferenceSession("window.onnx").run(None, {"tokens": np.array([[ID1, ID2, ID3]], np.int32)})[0]
```''',
    "web": '''Open `index.html` in a browser (from disk, or from any static host: no server of ours, no CDN). Over http(s)
the page reads `model.json`, `tokenizer.json` and `weights.bin`; opened from disk it reads `data.js`, which holds
the same in one script (browsers do not let a page read files beside it). To embed it:

```html
<script src="lstm-textgen.js"></script>
<script>
  await lstmTextgen.ready;
  const text = await lstmTextgen.generate("the king", 40, {greedy: true});  // as `generate --greedy` writes it
  const next = await lstmTextgen.suggest("the king", 5);  // the likeliest next words
</script>
```''',
}

_TOKENS = {
    "bpe": "byte-level BPE: tokenizer.json holds Hugging Face `tokenizers` JSON under \"huggingface\"; the model's ids "
           "are the library's ids + 2 (0 is padding, 1 unknown)",
    "char": "one token per character: `vocab[i]` in tokenizer.json is token i (0 padding, 1 unknown)",
    "word": "words, marks and clitics as lstm-textgen splits them: `vocab[i]` in tokenizer.json is token i "
            "(0 padding, 1 unknown)",
    "whitespace": "runs of non-space characters, and a token per line end: `vocab[i]` in tokenizer.json is token "
                  "i (0 padding, 1 unknown)",
}


def readme(manifest: dict, sizes: dict[str, int]) -> str:
    """The README of an export, from its manifest and the sizes of its model files."""
    fmt, check = manifest["format"], manifest["check"]
    lines = [f"# {manifest['run']['path'].rsplit('/', 1)[-1]}: {fmt} export"
             + (f", {manifest['quantize']}" if manifest["quantize"] else ""), "",
             f"Written by {STAMP} on "
             f"{manifest['created']} from the run `{manifest['run']['path']}` ({manifest['level']} level, "
             f"{manifest['vocab_size']:,} tokens, `{manifest['objective']}` objective, window "
             f"{manifest['window_size']}).", "",
             "## Files", "", *(f"- `{name}`: {size:,} bytes" for name, size in sizes.items()),
             "- `tokenizer.json`: the run's tokenizer (" + _TOKENS[manifest["level"]] + ")",
             "- `manifest.json`: format, signatures, level, vocabulary, the run's origin and this check", "",
             "## Load it and step it", "", _LOAD[fmt], ""]
    if fmt != "web":
        lines += ["## Signatures", "",
                  "`step` reads one token per row with the recurrent state carried by the caller (zeros to start); "
                  "`window` is the saved Keras model on whole windows.", "",
                  "| signature | inputs | outputs |", "|---|---|---|",
                  *(f"| `{name}` | {_tensors(sig['inputs'])} | {_tensors(sig['outputs'])} |"
                    for name, sig in manifest["signatures"].items()), ""]
    lines += ["## Checked against the run", "",
              f"On {check['positions']} {check['text']}, beside lstm-textgen's numpy stepper: largest probability "
              f"difference {check['step_max_diff']:.1e} through `step`, {check['window_max_diff']:.1e} through "
              f"whole windows; the likeliest token agreed on {100 * check['top1']:.1f}% of positions; perplexity "
              f"{check['perplexity']:.3f} against the run's {check['run_perplexity']:.3f}.", ""]
    return "\n".join(lines)


def _tensors(tensors: list[dict]) -> str:
    return ", ".join(f"`{t['name']}` {t['dtype']} {_shape(t['shape'])}" for t in tensors)


def _shape(shape: list) -> str:
    return "(" + ", ".join("any" if n is None else str(n) for n in shape) + ")"
