"""lstm-textgen generate and suggest: text from a trained run."""
from __future__ import annotations

import dataclasses
import json

import click

from lstm_textgen.cli.base import cli, refuse_together, run_option, setting_options, stream, user_errors
from lstm_textgen.errors import TextgenError


@cli.command(short_help="Continue a seed phrase with text from a run.")
@run_option
@click.option("seed", "--seed", "-s", metavar="TEXT", help="Seed phrase to continue.")
@click.option("seeds_file", "--seeds-file", type=click.Path(dir_okay=False), help="One seed phrase a line.")
@setting_options("generate")
@click.option("--random-seed", type=int, help="Fix the random draws to repeat a sample exactly.")
@click.option("--samples", type=int, default=1, show_default=True, help="Samples per seed, made as one batch.")
@click.option("--jsonl", is_flag=True, help="Print one JSON object per sample.")
@click.option("--interactive", "-i", is_flag=True, help="Pick each next word yourself from the top 10.")
@click.option("--novelty", is_flag=False, flag_value="4,8", default=None, metavar="[N,...]",
              help="Report the share of n-grams copied from the training text (n = 4,8 unless given).")
def generate(run_dir, seed, seeds_file, samples, jsonl, interactive, random_seed, novelty, **settings):
    """Continue a seed phrase with text from a trained run."""
    from lstm_textgen.generation.novelty import parse_ns, sample_novelty
    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.generation.sample import generate_many, new_random_seed, seed_phrases, settings_for

    _refuse_contradictions(seeds_file, samples, jsonl, interactive, random_seed, novelty, settings)

    with user_errors("lower --samples (or -n), or close other programs"):
        seeds, run = seed_phrases(seed, seeds_file), load_run(run_dir)
        settings = settings_for(run, **(settings | {"stop": list(settings["stop"]) or None})).check(_flag_names())
        novelty_ns = parse_ns(novelty) if novelty is not None else None
        if interactive:
            return _interactive(run, seeds[0], settings.length)
        base = random_seed if random_seed is not None else new_random_seed()
        if random_seed is None:
            click.echo(f"random seed: {base} (pass --random-seed {base} to repeat)", err=True)
        stream = _Stream(seeds[0]) if len(seeds) * samples == 1 and not jsonl else None  # a single sample streams
        results = generate_many(run, seeds, samples, base, stream and stream.piece, _warn_unknown,
                                **dataclasses.asdict(settings))
        reports = sample_novelty(run, results, novelty_ns) if novelty_ns else []
    _echo_samples(results, reports, stream, jsonl)


def _refuse_contradictions(seeds_file, samples, jsonl, interactive, random_seed, novelty, settings) -> None:
    """Flags that cannot mean anything together, refused before the run is read."""
    flags = _flag_names()
    if interactive:
        batch = (("--seeds-file", seeds_file), ("--samples", samples if samples != 1 else None), ("--jsonl", jsonl),
                 ("--novelty", novelty))
        for flag, value in batch:
            refuse_together(("--interactive", True), (flag, value), why="--interactive grows one text with you, "
                            "from one --seed")
        for name, value in (*settings.items(), ("random_seed", random_seed)):
            if name != "length":
                refuse_together(("--interactive", True), (flags(name), value or None), why="you pick each word from "
                                "the likeliest ten, so no sampling setting applies")
    greedy = "--greedy" if settings["greedy"] else f"{flags('temperature')} 0" if settings["temperature"] == 0 else None
    if greedy:
        from lstm_textgen.generation.rules import RULES

        for name in (name for name, rule in RULES.items() if rule.shapes):  # what greedy never applies
            value = None if name == "temperature" and settings[name] == 0 else settings[name]  # 0 is greedy too
            refuse_together((greedy, True), (flags(name), value), why=f"{greedy} always takes the "
                            f"likeliest token, and {flags(name)} only changes how the others are drawn")


def _flag_names():
    """GenerateConfig field -> the generate flag that sets it, so errors name what the person typed."""
    flags = {p.name: "/".join(sorted(p.opts, key=len)) for p in click.get_current_context().command.params}
    return lambda name: flags.get(name, f"generate.{name}")


def _warn_unknown(seed: str, unknown: list[str]) -> None:
    click.echo(f"not in the vocabulary, fed as <unk>: {', '.join(unknown)}", err=True)


class _Stream:
    """One sample printed as it is made: the seed before its first piece (or at the end, with -n 0)."""

    def __init__(self, seed: str):
        self.seed = seed

    def piece(self, row: int, piece: str) -> None:
        if self.seed is not None:
            stream(self.seed)
            self.seed = None
        stream(piece)

    def end(self) -> None:
        self.piece(0, "\n")


def _interactive(run, seed: str, length: int) -> None:
    """generate --interactive: the person picks each next word from the model's top 10."""
    from lstm_textgen.generation.interactive import Continuation, interact

    continuation = Continuation(run, seed, "--seed")
    if continuation.unknown:
        _warn_unknown(seed, continuation.unknown)
    interact(continuation, 10, length, ask=_ask, show=click.echo, warn=lambda message: click.echo(message, err=True))
    click.echo(continuation.text)


def _echo_samples(results: list, reports: list[dict], stream: _Stream | None, jsonl: bool) -> None:
    if stream is not None:  # the seed and the pieces are printed already
        stream.end()
        _echo_novelty(reports, 0)
        return
    for i, sample in enumerate(results):
        if jsonl:
            click.echo(json.dumps(sample.to_dict() | ({"novelty": reports[i]} if reports else {}), ensure_ascii=False))
        else:
            click.echo(f"--- sample {i + 1} (random seed {sample.random_seed}) ---")
            click.echo(sample.seed + sample.text)
            _echo_novelty(reports, i)


def _echo_novelty(reports: list[dict], i: int) -> None:
    if reports:
        from lstm_textgen.generation.novelty import format_novelty

        click.echo(format_novelty(reports[i]), err=True)


def _ask(prompt: str) -> str | None:
    """One line from the person at the keyboard; None when input ends."""
    try:
        return click.prompt(prompt, default="", show_default=False, prompt_suffix="> ")
    except click.Abort:
        return None
    except UnicodeDecodeError:  # a terminal whose input is read strictly as UTF-8
        raise TextgenError("what you typed is not UTF-8 text; set your terminal to UTF-8 and try again") from None


@cli.command(short_help="List the likeliest next words after TEXT.")
@run_option
@click.argument("text")
@click.option("top", "-k", "--top", type=int, default=10, show_default=True, help="How many next words to list.")
@click.option("as_json", "--json", is_flag=True, help="Print one JSON object.")
def suggest(run_dir, text, top, as_json):
    """List the likeliest next words after TEXT, with their probabilities."""
    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.generation.interactive import label, suggest as suggest_next

    with user_errors():
        run = load_run(run_dir)
        choices = suggest_next(run, text, top, "TEXT")
    unknown = run.tokenizer.unknown(text)
    if unknown:
        click.echo(f"not in the vocabulary, fed as <unk>: {', '.join(unknown)}", err=True)
    if as_json:
        click.echo(json.dumps({"text": text, "next": [{"token": w, "probability": p} for w, p in choices],
                               "unknown_seed_words": unknown}, ensure_ascii=False))
        return
    shown = [label(word) for word, _ in choices]
    width = max(len(w) for w in shown)
    for i, (word, (_, probability)) in enumerate(zip(shown, choices), 1):
        click.echo(f"{i:>3}. {word:<{width}}  {probability:.4f}")
