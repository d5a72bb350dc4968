"""lm-evaluation-harness (lm-eval 0.4.x, a test extra) scores a served run: its local-completions model finds the
tokenizer through the vLLM routes, sends token-id prompts with echo, logprobs 1 and max_tokens 1, and its
loglikelihoods are the run's own, as evaluate's scoring gives them. A real lm-eval process, a real server."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lstm_textgen.generation.evaluate import token_logprobs
from lstm_textgen.model.stepper import Stepper

pytest.importorskip("lm_eval", reason="lm-eval is a test extra: pip install -e '.[test]'")

DOCS = [
    {"context": "the cat sat on the", "choices": ["mat", "fire", "friends"], "answer": 0},
    {"context": "the dog sat on the", "choices": ["best", "log", "cat"], "answer": 1},
    {"context": "a cat and a dog , the best of", "choices": ["friends", "mat", "log"], "answer": 0},
    {"context": "sat by the", "choices": ["cat", "fire", "of"], "answer": 1},
]
TASK = """task: lstm_cloze
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""


def loglikelihood(run, stepper, context: str, continuation: str) -> float:
    """What the continuation's tokens score after the context, as lm-eval splits them (the whole text's tokens
    after the context's) and as evaluate scores a text."""
    whole, head = run.tokenizer.encode(context + " " + continuation), run.tokenizer.encode(context)
    logprobs, _, _ = token_logprobs(run, whole, stepper)
    return float(logprobs[len(head) - 1:].sum())


@pytest.mark.slow
def test_lm_eval_scores_a_served_run_with_its_own_loglikelihoods(server, run, tmp_path):
    data, tasks, out = tmp_path / "cloze.jsonl", tmp_path / "tasks", tmp_path / "out"
    data.write_text("".join(json.dumps(doc) + "\n" for doc in DOCS))
    tasks.mkdir()
    (tasks / "lstm_cloze.yaml").write_text(TASK.format(data=data))
    command = [sys.executable, "-m", "lm_eval", "run", "--model", "local-completions", "--model_args",
               f"model=run,base_url={server[0]}/v1/completions,tokenizer_backend=remote,max_retries=1",
               "--tasks", "lstm_cloze", "--include_path", str(tasks), "--output_path", str(out), "--log_samples"]
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
               "TOKENIZERS_PARALLELISM": "false"}  # nothing downloaded, the datasets cache in the test's folder
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=offline, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "|lstm_cloze|" in done.stdout  # the results table

    stepper = Stepper(run.weights)
    expected = [[loglikelihood(run, stepper, doc["context"], choice) for choice in doc["choices"]] for doc in DOCS]
    samples = [json.loads(line) for path in out.rglob("samples_lstm_cloze_*.jsonl") for line in path.open()]
    assert len(samples) == len(DOCS)
    for sample in samples:
        scores = [float(resp[0]) for resp in sample["filtered_resps"]]
        assert scores == pytest.approx(expected[sample["doc_id"]], abs=1e-4)
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]["lstm_cloze"]
    accuracy = np.mean([np.argmax(scores) == doc["answer"] for scores, doc in zip(expected, DOCS)])
    assert results["acc,none"] == pytest.approx(accuracy)
