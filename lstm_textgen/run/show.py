"""A run as people read it on a terminal: `info`'s summary and `runs`' table, from run_info() and list_runs()
(report.py)."""
from __future__ import annotations

import time

from lstm_textgen.run.files import MODEL, TOKENIZER
from lstm_textgen.run.report import finite


def format_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _maybe(value, fmt: str = "{:,}") -> str:
    return "-" if value is None else fmt.format(value)


def format_info(info: dict) -> str:
    """run_info() as aligned text for the terminal."""
    damaged = {entry["file"] for entry in info["damaged"]}
    lines = [f"run          {info['run']}",
             f"corpus       {_maybe(info['corpus'], '{}')} ({_maybe(info['train_tokens'])} training and "
             f"{_maybe(info['val_tokens'])} validation tokens"
             f"{'' if info['val_corpus'] is None else ' from ' + info['val_corpus']})"]
    if info["level"] is None:
        lines.append(f"tokenizer    unknown ({TOKENIZER} is damaged)")
    else:
        lines.append(f"tokenizer    {info['level']} level, {'lower-cased' if info['lowercase'] else 'case kept'}, "
                     f"vocabulary {info['vocab_size']:,} (with <pad> and <unk>)")
    if info["layers"] is None:
        lines.append(f"model        {MODEL} is damaged or lost (below)" if MODEL in damaged else
                     f"model        no {MODEL} yet (no epoch has finished)")
    else:
        lines.append(f"model        {_maybe(info['parameters'])} parameters, objective {info['objective']}, "
                     f"window {info['window_size']}")
        name_width = max(len(layer["name"]) for layer in info["layers"])
        kind_width = max(len(layer["class_name"]) for layer in info["layers"])
        for layer in info["layers"]:
            lines.append(f"  {layer['name']:<{name_width}}  {layer['class_name']:<{kind_width}}  "
                         f"{layer['parameters']:>12,}  {layer['description']}")
    stopped = ", stopped early" if info["stopped_early"] else ""
    lines.append(f"training     {info['epochs']} of {_maybe(info['planned_epochs'])} epochs{stopped}; best epoch "
                 f"{_maybe(info['best_epoch'])}, val perplexity {_maybe(info['best_val_perplexity'], '{:,.2f}')}, "
                 f"{_maybe(info['best_val_bits_per_char'], '{:.3f}')} bits per character")
    lines.append(f"speed        {_maybe(info['tokens_per_second'], '{:,.0f}')} tokens/s "
                 f"({_maybe(info['tokens_seen'])} tokens seen)")
    origin = info["origin"]
    if origin:
        vocabulary = ("kept" if origin.get("base_vocab") == "keep" else
                      f"extended by {_maybe(origin.get('added_tokens'))} tokens")
        lines.append(f"base run     {origin.get('init_from')} ({origin.get('path')}; config sha256 "
                     f"{str(origin.get('config_sha256'))[:12]}, best val perplexity "
                     f"{_maybe(finite(origin.get('best_val_perplexity')), '{:,.2f}')}); its vocabulary {vocabulary}, "
                     f"{_maybe(origin.get('unknown_share'), '{:.1%}')} of the corpus's tokens unknown to it")
    coverage = info["embedding_coverage"]
    if coverage:
        lines.append(f"embedding    {coverage.get('path', info['embedding_path'])}: "
                     f"{coverage['vocab_share']:.1%} of the vocabulary, {coverage['token_share']:.1%} of corpus tokens")
    else:
        lines.append("embedding    " + ("the base run's, then trained on (unless frozen)" if origin else
                                      "learned from scratch (no pretrained vectors)"))
    lines.append("files")
    width = max(len(entry["name"]) for entry in info["files"]) if info["files"] else 0
    for entry in info["files"]:
        count = f"  ({entry['files']} files)" if "files" in entry else "  (a link to a file that is gone)" if entry.get(
            "broken") else ""
        lines.append(f"  {entry['name']:<{width}}  {format_size(entry['bytes']):>9}{count}")
    total = sum(entry["bytes"] for entry in info["files"])
    lines.append(f"  {'total':<{width}}  {format_size(total):>9}")
    lines += [f"damaged      {entry['problem']}" for entry in info["damaged"]]
    return "\n".join(lines)


def format_runs_table(rows: list[dict]) -> str:
    """list_runs() rows as an aligned table with a header."""
    header = ("name", "corpus", "epochs", "best val ppl", "bits/char", "size", "last modified", "status")
    table = [header] + [(row["name"], row["corpus"], str(row["epochs"]), _maybe(row["best_val_perplexity"], "{:,.2f}"),
                         _maybe(row["best_val_bits_per_char"], "{:.3f}"), format_size(row["bytes"]),
                         time.strftime("%Y-%m-%d %H:%M", time.localtime(row["modified"])), row["status"])
             for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    right = {2, 3, 4, 5}  # numbers line up on the right
    return "\n".join("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(line, widths))).rstrip() for line in table)
