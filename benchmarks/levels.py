"""Word, char and bpe levels on one scale: validation bits per character after the same minutes of training.

    python -m benchmarks levels --corpus warpeace_input.txt [--minutes 10] [--units 256] [--bpe-vocab 8000]
                                [--chars N] [--keep DIR] [--set KEY=VALUE ...] [--rescore]

The corpus is cut once at a line start: its first 90% is every level's training file (each run keeps the
last 10% of that as its own validation split, for the best model and early stopping), the last 10% is the
held-out text all three are scored on with `lstm-textgen evaluate`, so the figures compare directly. Each
level trains for --minutes of wall time (train.max_minutes) with the same recurrent size (--units, one LSTM
layer, dense layer and embedding of the same width, objective sequence); windows cover about the same
text (word 32, bpe 48, char 160 tokens). Every level trains with configs/quality.yaml's recipe of an earlier stop: the output
tied to the embedding through a linear dense layer, dropout 0.3 before and after the LSTM, Adam at 3e-3
falling along a cosine to 1e-4 by the end of the minutes (it lowered every level's figure, by 0.07 to 0.11
bits per character, against the defaults: dropout 0.1 and 0.2, Adam at 1e-3, no tying). --set adds a
setting to every level's run alike, after these. --chars trains on the corpus's first N characters only
(for a quick check of the script itself).

Why a bpe vocabulary of 8,000 by default: it did best of three, 10 minutes each at 256 units on War and
Peace with the default settings (held-out bits per character: 2,000 tokens 1.8034, 4,000 1.7904, 8,000
1.7740). A larger vocabulary makes longer tokens (3.2 characters at 2,000, 3.6 at 4,000, 4.0 at 8,000; word
level 4.5), so each step covers more text, and that outweighs the dearer output layer. Beyond it the output
layer wins: 16,000 tokens, with the recipe above, scored 1.7054 where 8,000 scored 1.6638.

Word level's bits per character flatter it: an <unk> costs one prediction however long the word it
hides, so the table prints the share of held-out characters inside <unk> tokens beside it. When word and char
both run, one more line gives word level a complete code for the text as char and bpe levels have: the word
run's bits plus, for every <unk>, the char run's bits for the characters it hides and for the one after it
(which ends the spelling) -- a word model that spells its unknown words with the char model. --rescore
scores the runs already in --keep DIR again, without training.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import add_corpus, add_settings, cli_command
from benchmarks.results import figure

LEVELS = {  # level -> its own settings; everything else is shared
    "word": ["data.level=word", "data.max_vocab=10000", "data.window_size=32"],
    "char": ["data.level=char", "data.max_vocab=null", "data.window_size=160"],
    "bpe": ["data.level=bpe", "data.window_size=48"],
}


def split_corpus(corpus: Path, folder: Path, chars: int | None) -> tuple[Path, Path]:
    """train.txt (the first 90%, cut at a line start) and held_out.txt (the rest) in folder."""
    text = corpus.read_text(encoding="utf-8")[:chars]
    cut = text.index("\n", int(len(text) * 0.9)) + 1
    (folder / "train.txt").write_text(text[:cut], encoding="utf-8")
    (folder / "held_out.txt").write_text(text[cut:], encoding="utf-8")
    return folder / "train.txt", folder / "held_out.txt"


def run_level(level: str, train: Path, held_out: Path, runs: Path, args) -> dict:
    run = runs / level
    shared = [f"train.max_minutes={args.minutes}", "train.epochs=1000", "train.early_stopping_patience=null",
              f"model.units={args.units}", f"model.dense_units={args.units}", f"embedding.dim={args.units}",
              "model.objective=sequence", "train.sample_every=null", "train.batch_size=32",
              "model.tie_weights=true", "model.dense_activation=linear", "model.dropout=0.3",
              "model.dense_dropout=0.3", "train.learning_rate=3.0e-3", "train.lr_decay=cosine",
              "train.min_learning_rate=1.0e-4",
              f"data.max_vocab={args.bpe_vocab}" if level == "bpe" else "data.min_count=1"]
    command = [*cli_command(), "train", str(train), "--run", str(run)]
    for setting in [*shared, *LEVELS[level], *args.settings]:
        command += ["--set", setting]
    if not args.rescore:
        print(f"[{level}] training for {args.minutes} minutes ...", file=sys.stderr, flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    scored = subprocess.run([*cli_command(), "evaluate", "--run", str(run), str(held_out), "--json"], check=True,
                            capture_output=True, text=True)
    report = json.loads(scored.stdout)
    metrics = json.loads((run / "metrics.json").read_text())
    return {"level": level, "vocabulary": metrics["vocab_size"], "parameters": metrics["parameters"],
            "tokens_per_second": metrics["tokens_per_second"], "epochs": metrics["epochs"],
            "bits_per_char": report["bits_per_char"], "unk_char_share": report["unk_char_share"],
            "val_bits_per_char": metrics.get("best_val_bits_per_char")}


def spelled_word_bits(word: dict, word_run: Path, char_run: Path, held_out: Path) -> float:
    """Held-out bits per character of the word run (word: its row, scored by evaluate) with every <unk>
    spelled by the char run (see above)."""
    from lstm_textgen.text.corpus import read_text
    from lstm_textgen.generation.evaluate import predictions
    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.text.tokenizer import UNK_ID
    from lstm_textgen.text.words import WORD_RE

    text = read_text(held_out)
    words, chars = load_run(word_run), load_run(char_run)
    assert words.tokenizer.lowercase == chars.tokenizer.lowercase
    char_ids = chars.tokenizer.encode_array(text)  # one per character of the (folded) text
    char_bits = np.zeros(len(char_ids))  # the first character is not predicted
    at = 1
    for probs, targets in predictions(chars, char_ids):
        picked = probs[np.arange(len(targets)), targets].astype(np.float64)
        char_bits[at: at + len(targets)] = -np.log2(np.maximum(picked, 1e-30))
        at += len(targets)
    total = word["bits_per_char"] * len(text)
    folded = text.lower() if words.tokenizer.lowercase else text
    for m, token_id in zip(WORD_RE.finditer(folded), words.tokenizer.encode_array(text)):  # one match a token
        if token_id == UNK_ID:
            total += char_bits[m.start(): m.end() + 1].sum()
    return float(total / len(text))


def add_arguments(parser) -> None:
    add_corpus(parser, "English prose of a few MB: War and Peace for the recorded figures")
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes per level (the target: >= 10)")
    parser.add_argument("--units", type=int, default=256, help="LSTM units (and dense and embedding width)")
    parser.add_argument("--bpe-vocab", type=int, default=8000, help="the bpe vocabulary size (data.max_vocab)")
    parser.add_argument("--chars", type=int, default=None, help="use only the corpus's first N characters")
    parser.add_argument("--levels", default="word,char,bpe", help="comma-separated levels to run")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder")
    parser.add_argument("--rescore", action="store_true", help="score the runs in --keep DIR; train nothing")
    add_settings(parser, "a setting for every level's run (repeatable), after the script's own")


def run(args) -> tuple[list[dict], None]:
    if args.rescore and args.keep is None:
        raise SystemExit("Error: --rescore needs --keep DIR, the folder of the runs to score")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        train, held_out = split_corpus(args.corpus, folder, args.chars)
        print(f"corpus {args.corpus.name}: {train.stat().st_size:,} bytes to train on, "
              f"{held_out.stat().st_size:,} held out; {args.minutes} minutes a level, {args.units} units")
        rows = [run_level(level, train, held_out, folder / "runs", args) for level in args.levels.split(",")]
        by_level = {r["level"]: r for r in rows}
        spelled = None
        if {"word", "char"} <= by_level.keys():
            spelled = spelled_word_bits(by_level["word"], folder / "runs" / "word", folder / "runs" / "char",
                                        held_out)
    print(f"{'level':<6} {'vocabulary':>10} {'parameters':>11} {'tokens/s':>9} {'epochs':>6} "
          f"{'bits/char':>9} {'in <unk>':>8}")
    figures = []
    for r in rows:
        print(f"{r['level']:<6} {r['vocabulary']:>10,} {r['parameters']:>11,} {r['tokens_per_second']:>9,.0f} "
              f"{r['epochs']:>6} {r['bits_per_char']:>9.4f} {r['unk_char_share']:>8.2%}")
        figures += [figure(f"{r['level']}: bits/char", r["bits_per_char"], "bits/char", main=True),
                    figure(f"{r['level']}: chars in <unk>", 100 * r["unk_char_share"], "%"),
                    figure(f"{r['level']}: tokens/s", r["tokens_per_second"], "tokens/s"),
                    figure(f"{r['level']}: epochs", r["epochs"], "epochs"),
                    figure(f"{r['level']}: vocabulary", r["vocabulary"], "tokens"),
                    figure(f"{r['level']}: parameters", r["parameters"], "weights")]
    if spelled is not None:
        print(f"word, every <unk> spelled by the char run: {spelled:.4f} bits per character, none in <unk>")
        figures.append(figure("word, <unk> spelled by the char run: bits/char", spelled, "bits/char", main=True))
    best = min(rows, key=lambda r: r["bits_per_char"])
    print(f"lowest held-out bits per character: {best['level']} ({best['bits_per_char']:.4f})")
    return figures, None  # no baseline: the levels are compared with each other
