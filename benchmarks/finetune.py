"""Fine-tuning against training from scratch: the same minutes on a small corpus, scored on held-out text.

    python -m benchmarks finetune --corpus warpeace_input.txt --target nietzsche.txt [--base-minutes 30]
                                  [--minutes 5] [--levels word,char] [--target-bytes 150000]
                                  [--held-out-bytes 100000] [--keep DIR] [--tiny]

The base run trains on --corpus (War and Peace for the recorded figures) for --base-minutes (once: with --keep
DIR, a base already in DIR is reused; the runs on the target corpus are made again). The target corpus is the
first --target-bytes of --target (nietzsche.txt for the recorded figures; cut at a line end); the next
--held-out-bytes after it, which no run sees, is the text every run is scored on (`evaluate`: perplexity, bits
per character, the share of characters inside <unk>). Each of these then trains for --minutes on the target
corpus (train.max_minutes, no early stopping: model.keras is the best epoch on the target's own validation
tail), at word level and at char level:

- scratch: a new model trained from scratch with the base's tokenizer (through the library: fine-tuning from
  a copy of the base whose weights are the fresh initial ones a new run gets), so it predicts the same tokens
  as keep;
- keep: `train --from base` (data.base_vocab=keep: the corpus's new words are <unk>);
- extend: data.base_vocab=extend (the corpus's new words get rows and columns; max_vocab raised by
  --extend-by) -- it predicts other tokens, so it is compared in bits per character;
- frozen: keep with train.freeze=[embedding].

The table prints per-token perplexity where the runs predict the same tokens (scratch, keep, frozen) and bits
per character for all, with the <unk> share beside it (an <unk> hides a whole word and flatters both figures),
the change against scratch (per token, or per character for extend), and the seconds from train() to its
first step: reading the base, tokenizing the 150 KB corpus and building the model. Fine-tuning never reads
the base's corpus or token cache; the base's own start (tokenizing War and Peace) is printed for contrast.
The target: fine-tuned runs at least 25% below scratch. --tiny checks the script in seconds.
"""
from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import add_corpus, add_settings
from benchmarks.results import figure

LEVELS = {  # level -> the base's own settings; the rest is shared (a demo-sized model)
    "word": ["data.level=word", "data.max_vocab=10000", "data.window_size=32"],
    "char": ["data.level=char", "data.max_vocab=null", "data.window_size=128"],
}
VARIANTS = {  # name -> the fine-tuning settings on top of the base's
    "scratch": [], "keep": [], "extend": ["data.base_vocab=extend"], "frozen": ["train.freeze=[embedding]"]}


class FirstStep(logging.Handler):
    """Notes when training logs its 'training N parameters ...' line, just before its first step."""

    def __init__(self):
        super().__init__()
        self.at = None

    def emit(self, record):
        if self.at is None and record.getMessage().startswith("training "):
            self.at = time.perf_counter()


def timed_train(config) -> float:
    """Train; return the seconds from the call to the first training step."""
    import keras

    from lstm_textgen.training.train import train

    keras.backend.clear_session()
    handler, started = FirstStep(), time.perf_counter()
    logger = logging.getLogger("lstm_textgen")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        train(config)
    finally:
        logger.removeHandler(handler)
    return handler.at - started if handler.at else float("nan")


def cut(path: Path, start: int, size: int) -> str:
    """size bytes of path's text from byte start, both ends moved to a line end."""
    data = path.read_bytes()
    begin = data.rfind(b"\n", 0, start) + 1 if start else 0
    end = data.find(b"\n", begin + size) + 1 or len(data)
    return data[begin:end].decode("utf-8")


def train_base(level: str, corpus: Path, runs: Path, args) -> tuple[Path, float]:
    from lstm_textgen.training.plan import training_config

    run = runs / f"base_{level}"
    settings = [*args.shared, *LEVELS[level], f"train.max_minutes={args.base_minutes}"]
    print(f"[{level}] base: training on {corpus.name} for {args.base_minutes} minutes ...", file=sys.stderr,
          flush=True)
    return run, timed_train(training_config(None, settings, {"data.corpus": str(corpus), "train.run_dir": str(run)}))


def blank_copy(base: Path, folder: Path) -> Path:
    """The base run with the weights a new run starts from (its config's seed) in place of its trained ones:
    fine-tuning from it trains from scratch, on the base's tokenizer."""
    import keras

    from lstm_textgen.model.stack import build_model
    from lstm_textgen.run.files import CONFIG, MARKER, METRICS, MODEL, TOKENIZER, save_model
    from lstm_textgen.run.rundir import load_run

    run = load_run(base)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (MARKER, CONFIG, TOKENIZER, METRICS):
        shutil.copyfile(base / name, folder / name)
    keras.utils.set_random_seed(run.config.train.seed)
    save_model(build_model(run.config.model, run.tokenizer.vocab_size, run.config.embedding.dim), folder / MODEL)
    return folder


def fine_tune(name: str, base: Path, target: Path, held_out: Path, runs: Path, args) -> dict:
    from lstm_textgen.generation.evaluate import evaluate
    from lstm_textgen.training.plan import training_config
    from lstm_textgen.run.rundir import load_run

    run = runs / f"{base.name}_{name}"
    shutil.rmtree(run, ignore_errors=True)  # made again each time (a kept one would resume, or stop at once)
    start_from = blank_copy(base, runs / f"{base.name}_blank") if name == "scratch" else base
    settings = [*VARIANTS[name], f"train.max_minutes={args.minutes}", "train.epochs=100000",
                "train.early_stopping_patience=null", "train.sample_every=null", *args.settings]
    if name == "extend":
        vocab = load_run(base).tokenizer.vocab_size
        settings.append(f"data.max_vocab={vocab + args.extend_by}")
    print(f"  {name}: {args.minutes} minutes on {target.name} ...", file=sys.stderr, flush=True)
    config = training_config(None, settings, {"data.corpus": str(target), "train.run_dir": str(run),
                                              "train.init_from": str(start_from)})
    start = timed_train(config)
    report = evaluate(load_run(run), [str(held_out)])
    return {"name": name, "start": start, "vocabulary": load_run(run).tokenizer.vocab_size, **report}


def table(level: str, rows: list[dict], base_start: float) -> list[dict]:
    """Print one level's table; returns its figures."""
    scratch = rows[0]
    started = f"{base_start:.1f} s, tokenizing War and Peace" if base_start == base_start else "reused"
    print(f"\n{level} level (base start: {started})")
    print(f"{'run':<8} {'vocabulary':>10} {'perplexity':>10} {'bits/char':>9} {'in <unk>':>8} {'vs scratch':>12} "
          f"{'start s':>7}")
    figures = [figure(f"{level} base: seconds to start", base_start, "s")] if base_start == base_start else []
    for r in rows:
        same_tokens = r["vocabulary"] == scratch["vocabulary"]
        ppl = f"{r['perplexity']:>10.2f}" if same_tokens else f"{'-':>10}"
        change = (1 - r["perplexity"] / scratch["perplexity"] if same_tokens
                  else 1 - r["bits_per_char"] / scratch["bits_per_char"])
        unit = "" if same_tokens else " bpc"
        versus = "" if r is scratch else f"{-change:+.1%}{unit}"
        print(f"{r['name']:<8} {r['vocabulary']:>10,} {ppl} {r['bits_per_char']:>9.4f} {r['unk_char_share']:>8.2%} "
              f"{versus:>12} {r['start']:>7.1f}")
        run = f"{level} {r['name']}"
        if same_tokens:
            figures.append(figure(f"{run}: perplexity", r["perplexity"], "ppl", main=r["name"] == "keep"))
        figures += [figure(f"{run}: bits/char", r["bits_per_char"], "bits/char"),
                    figure(f"{run}: chars in <unk>", 100 * r["unk_char_share"], "%"),
                    figure(f"{run}: seconds to start", r["start"], "s")]
        if r is not scratch:
            figures.append(figure(f"{run}: vs scratch{unit}", -100 * change, "%"))
    tuned = [r for r in rows[1:] if r["vocabulary"] == scratch["vocabulary"]]
    if tuned:
        best = min(tuned, key=lambda r: r["perplexity"])
        print(f"target: a fine-tuned run at least 25% below scratch per token; best {best['name']}: "
              f"{1 - best['perplexity'] / scratch['perplexity']:.1%} below")
        below = 100 * (1 - best["perplexity"] / scratch["perplexity"])
        figures.append(figure(f"{level}: best fine-tuned below scratch", below, "%", main=True))
    return figures


def add_arguments(parser) -> None:
    add_corpus(parser, "a long text the base runs train on: War and Peace for the recorded figures")
    add_corpus(parser, "the small corpus fine-tuned on and scored on: nietzsche.txt for the recorded figures",
               flag="--target")
    parser.add_argument("--base-minutes", type=float, default=30.0, help="the base run's training minutes")
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of each run on the target corpus")
    parser.add_argument("--levels", default="word,char", help="comma-separated: word, char")
    parser.add_argument("--target-bytes", type=int, default=150_000, help="the target corpus: --target's head")
    parser.add_argument("--held-out-bytes", type=int, default=100_000, help="the scored text, right after it")
    parser.add_argument("--base-bytes", type=int, default=None, help="train the base on --corpus's head only")
    parser.add_argument("--units", type=int, default=192, help="LSTM units of the base (and so of every run)")
    parser.add_argument("--extend-by", type=int, default=5000, help="extend: data.max_vocab raised by this much")
    add_settings(parser, "a setting for every run on the target corpus, e.g. train.learning_rate=1.0e-3")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs (and reuse a base) in this folder")
    parser.add_argument("--tiny", action="store_true", help="seconds-long settings, to check the script")


def run(args) -> tuple[list[dict], dict]:
    if args.tiny:
        args.base_minutes, args.minutes, args.units = 0.05, 0.05, 16
        args.target_bytes, args.held_out_bytes, args.base_bytes = 20_000, 10_000, 100_000
    args.shared = [f"model.units={args.units}", "model.dense_units=128", "embedding.dim=64", "train.batch_size=32",
                   "train.learning_rate=3.0e-3", "train.epochs=100000", "train.early_stopping_patience=null",
                   "train.sample_every=null", "model.dropout=0.1", "model.dense_dropout=0.1"]
    if args.tiny:
        args.shared += ["model.dense_units=16", "embedding.dim=16", "data.window_size=8"]
    logging.getLogger("lstm_textgen").addHandler(logging.StreamHandler(sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        base_corpus = folder / "warpeace.txt"
        base_corpus.write_text(cut(args.corpus, 0, args.base_bytes or args.corpus.stat().st_size), encoding="utf-8")
        target, held_out = folder / "nietzsche_head.txt", folder / "nietzsche_held_out.txt"
        target.write_text(cut(args.target, 0, args.target_bytes), encoding="utf-8")
        held_out.write_text(cut(args.target, len(target.read_bytes()), args.held_out_bytes), encoding="utf-8")
        print(f"target {target.stat().st_size:,} bytes of {args.target.name}, scored on the next "
              f"{held_out.stat().st_size:,}; base on {base_corpus.stat().st_size:,} bytes of {args.corpus.name} "
              f"for {args.base_minutes} minutes; {args.minutes} minutes a run")
        results = {}
        for level in args.levels.split(","):
            base, base_start = train_base(level, base_corpus, folder / "runs", args)
            results[level] = ([fine_tune(name, base, target, held_out, folder / "runs", args) for name in VARIANTS],
                              base_start)
    figures = [f for level, (rows, base_start) in results.items() for f in table(level, rows, base_start)]
    level, (rows, _) = next(iter(results.items()))
    return figures, figure(f"{level} scratch: perplexity", rows[0]["perplexity"], "ppl")
