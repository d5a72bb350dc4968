"""`python -m benchmarks NAME [options]`: run one benchmark, print its table and append its result line to
benchmarks/results/NAME.jsonl; without a name, list them."""
from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import results
from benchmarks.catalog import BENCHMARKS
from benchmarks.common import describe_commit, describe_corpus, describe_machine

USAGE = "python -m benchmarks NAME [--corpus FILE] [--minutes M] [options]"


class Parser(argparse.ArgumentParser):
    """Usage mistakes as one `Error:` line."""

    def error(self, message):
        sys.exit(f"Error: {message} (see: {self.prog} --help)")


def listing() -> str:
    width = max(map(len, BENCHMARKS))
    rows = [textwrap.fill(f"{name:<{width}}  ~{b.duration:<10}  {b.measures}", 110, initial_indent="  ",
                          subsequent_indent=" " * (width + 17)) for name, b in BENCHMARKS.items()]
    return "\n".join([f"usage: {USAGE}", "", "Benchmarks, with roughly how long each takes on a 2-core laptop CPU:",
                      *rows, "", "python -m benchmarks NAME --help gives one's options. Each run appends a line to "
                      "benchmarks/results/NAME.jsonl.", "Run nothing else on the cores during a timed run."])


def parser_for(name: str, module) -> Parser:
    parser = Parser(prog=f"python -m benchmarks {name}", description=module.__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    recording = parser.add_mutually_exclusive_group()
    recording.add_argument("--results-dir", type=Path, default=results.RESULTS_DIR,
                           help="append the result line to DIR/NAME.jsonl (default: benchmarks/results)")
    recording.add_argument("--no-record", action="store_true", help="print the figures, record nothing")
    return parser


def check_corpora(name: str, parser: Parser, args) -> list[dict]:
    """Exit with one Error line if a required corpus is missing or a named file is not there; else describe them."""
    corpora = getattr(parser, "corpora", {})
    missing = [f"{usage} ({kind})" for dest, (usage, kind, required) in corpora.items()
               if required and getattr(args, dest) is None]
    if missing:
        sys.exit(f"Error: {name} needs {' and '.join(missing)}")
    described = []
    for dest, (usage, _, _) in corpora.items():
        value = getattr(args, dest)
        for path in value if isinstance(value, list) else [value] if value is not None else []:
            if not path.is_file():
                sys.exit(f"Error: {usage.split()[0]} {path}: no such file")
            described.append(describe_corpus(usage.split()[0], path))
    return described


def plain(value):
    """An argument's value as JSON holds it: paths as strings, lists item by item."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(listing())
        return
    name = argv[0]
    if name not in BENCHMARKS:
        sys.exit(f"Error: no benchmark '{name}'; choose one of: {', '.join(BENCHMARKS)}")
    module = importlib.import_module(f"benchmarks.{name}")
    parser = parser_for(name, module)
    args = parser.parse_args(argv[1:])
    corpora = check_corpora(name, parser, args)
    record = {"benchmark": name, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "commit": describe_commit(), "machine": describe_machine(),
              "arguments": {k: plain(v) for k, v in vars(args).items() if k not in ("results_dir", "no_record")},
              "corpus": corpora}
    from lstm_textgen.errors import TextgenError

    start = time.perf_counter()
    try:
        figures, baseline = module.run(args)
    except TextgenError as e:
        sys.exit(f"Error: {e}")
    record.update(seconds=round(time.perf_counter() - start, 1), figures=figures, baseline=baseline)
    if not args.no_record:
        print(f"recorded in {results.append(args.results_dir, record)}")


if __name__ == "__main__":
    main()
