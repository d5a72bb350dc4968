"""Every file in configs/ trains in a copy of the repository with nothing beside it: a config may name only what
ships (data/) or take the corpus from the command line, never a path outside the repository."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(path.name for path in (REPO / "configs").glob("*.yaml"))


def cli() -> list[str]:
    script = Path(sys.executable).with_name("lstm-textgen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lstm_textgen"]


def paths_in(node, where=""):
    """(dotted key, value) for every string value of a loaded YAML file."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_in(value, f"{where}.{key}" if where else key)
    elif isinstance(node, str):
        yield where, node


def test_there_are_configs_to_check():
    assert {"default.yaml", "demo.yaml", "quality.yaml", "reference.yaml"} <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_a_config_names_nothing_outside_the_repository(name):
    values = yaml.safe_load((REPO / "configs" / name).read_text(encoding="utf-8"))
    outside = [(key, value) for key, value in paths_in(values)
               if value.startswith(("/", "~", "..")) or "/../" in value or "shared/data" in value]
    assert outside == []


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_trains_in_a_copy_of_the_repository_with_nothing_beside_it(tmp_path, name):
    clone = tmp_path / "lstm-textgen"
    for folder in ("configs", "data"):
        shutil.copytree(REPO / folder, clone / folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lstm-textgen"]  # no ../shared, no ../anything
    run = clone / "runs" / "check"
    train = subprocess.run(cli() + ["train", "--config", f"configs/{name}", "--run", "runs/check",
                                    "--set", "train.epochs=1", "--set", "train.steps_per_epoch=3"],
                           cwd=clone, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and (run / "model.keras").is_file()
    generate = subprocess.run(cli() + ["generate", "--run", "runs/check", "--seed", "the king", "-n", "5",
                                       "--random-seed", "1"], cwd=clone, capture_output=True, text=True, timeout=300)
    assert generate.returncode == 0 and generate.stdout.strip(), generate.stderr[-3000:]
