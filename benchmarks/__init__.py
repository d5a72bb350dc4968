"""lstm-textgen's benchmark suite: `python -m benchmarks` lists the benchmarks, `python -m benchmarks NAME` runs
one and records its figures in benchmarks/results/NAME.jsonl (see benchmarks/README.md). Imports nothing."""
