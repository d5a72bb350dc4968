"""train.distribute: TF_CONFIG checks, the chief's role, MirroredStrategy, and two real workers on 127.0.0.1."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_textgen.run.rundir import load_run
from lstm_textgen.cli import cli
from lstm_textgen.training.distribute import read_role, worker_run_dir
from lstm_textgen.errors import ConfigError

from conftest import REPO, TINY_SETTINGS, train_tiny


def tf_config(ports, task_type="worker", index=0):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize("value, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG is malformed (no 'task' key)"),
    (tf_config([1, 2], index=2), "TF_CONFIG is malformed (task worker 2 is not in the cluster)"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "only have chief and worker"),
])
def test_bad_tf_config_is_one_error_line(tiny_corpus, tmp_path, monkeypatch, value, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if value is not None:
        monkeypatch.setenv("TF_CONFIG", value)
    flat = [a for s in TINY_SETTINGS for a in ("--set", s)]
    result = CliRunner().invoke(cli, ["train", str(tiny_corpus), "--run", str(tmp_path / "run"), *flat,
                                      "--set", "train.distribute=multi_worker"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_the_chief_is_worker_0_unless_there_is_a_chief(tmp_path):
    run = tmp_path / "run"
    assert read_role("none").is_chief and worker_run_dir(read_role("mirrored"), run) == run
    first, second = (read_role("multi_worker", {"TF_CONFIG": tf_config([1, 2], index=i)}) for i in (0, 1))
    assert first.is_chief and not second.is_chief and second.workers == 2
    assert worker_run_dir(first, run) == run and worker_run_dir(second, run) != run
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}
    role = read_role("multi_worker", {"TF_CONFIG": json.dumps(with_chief)})
    assert not role.is_chief and role.workers == 2
    with_chief["task"] = {"type": "chief", "index": 0}
    assert read_role("multi_worker", {"TF_CONFIG": json.dumps(with_chief)}).is_chief


def test_unknown_distribute_value_is_refused():
    from lstm_textgen.config import load_config
    with pytest.raises(ConfigError, match="train.distribute must be 'none' or 'mirrored' or 'multi_worker'"):
        load_config(None, ["train.distribute=horovod"])


@pytest.mark.slow  # MirroredStrategy takes its time to start, even with one replica
def test_mirrored_strategy_trains_on_one_cpu_replica(tiny_corpus, tmp_path):
    run = train_tiny(tiny_corpus, tmp_path / "run", "train.distribute=mirrored")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["tokens_seen"] == 3 * 8 * 5 and np.isfinite(metrics["best_val_loss"])
    assert load_run(run).model.output_shape[-1] == load_run(run).tokenizer.vocab_size


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_train_one_model_and_only_the_chief_writes_the_run(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    ports = [free_port(), free_port()]
    args = [sys.executable, "-m", "lstm_textgen", "train", str(tiny_corpus), "--run", str(run),
            *[a for s in [*TINY_SETTINGS, "train.distribute=multi_worker"] for a in ("--set", s)]]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TF_CONFIG": tf_config(ports, index=i), "TMPDIR": str(scratch)})
             for i in (0, 1)]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "worker 1 of 2: the chief writes" in outputs[1][1]
    copies = list(scratch.glob("lstm-textgen-worker1-*"))
    assert len(copies) == 1  # the second worker wrote its own folder, not the chief's
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "tokenizer.json", "model.keras", "history.csv",
                                                "metrics.json", "checkpoints", "tokens"}
    assert load_run(run).config.train.run_dir == str(run)  # the chief's config, not the other worker's
    # Trained together: each worker saw its own half of every batch, yet both ended with the same weights.
    chief, other = load_run(run), load_run(copies[0])
    for a, b in zip(chief.model.get_weights(), other.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert json.loads((run / "metrics.json").read_text())["tokens_seen"] == 3 * 8 * 5  # the global batch
    generated = subprocess.run([sys.executable, "-m", "lstm_textgen", "generate", "--run", str(run), "--seed",
                                "the cat", "-n", "5", "--random-seed", "1"], capture_output=True, text=True,
                               cwd=REPO, timeout=120)
    assert generated.returncode == 0 and generated.stdout.strip(), generated.stderr
