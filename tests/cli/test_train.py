"""lstm-textgen train: a corpus or config it cannot train on is one Error: line, and no run is left behind."""
import pytest

from helpers import assert_one_line_error, invoke, tiny_train_args


@pytest.mark.parametrize("content, fragments", [
    (None, ["c.txt does not exist"]),
    (b"", ["holds no text"]),
    (b"just three words", ["too short for one training window"]),
    (b"ok \xff here" * 10, ["not UTF-8", "byte offset 3"]),
])
def test_train_corpus_errors(tmp_path, content, fragments):
    corpus = tmp_path / "c.txt"
    if content is not None:
        corpus.write_bytes(content)
    assert_one_line_error(invoke(*tiny_train_args(corpus, tmp_path / "run")), *fragments)
    assert not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.parametrize("setting, fragments", [
    ("model.unit=3", ["unknown config key 'model.unit'", "did you mean 'model.units'"]),
    ("train.epochs=many", ["train.epochs must be int, got 'many'"]),
    ("data.window_size=-4", ["data.window_size must be >= 1, got -4"]),
    ("model.bidirectional=true", ["model.bidirectional needs model.objective=last"]),
    ("data.level=bpe,embedding.path=../shared/data/glove.6B.50d.top2445.txt",
     ["embedding.path gives word vectors, which do not apply to data.level=bpe's subword tokens",
      "set --set embedding.path=null"]),
    ("data.level=bpe,data.max_vocab=100", ["data.max_vocab is the vocabulary size data.level=bpe learns up to: at least 258"]),
])
def test_train_config_errors(tiny_corpus, tmp_path, setting, fragments):
    result = invoke(*tiny_train_args(tiny_corpus, tmp_path / "run"), *[a for s in setting.split(",")
                                                                       for a in ("--set", s)])
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "run").exists()


def test_train_bad_config_file(tiny_corpus, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  units: [\n")
    assert_one_line_error(invoke("train", tiny_corpus, "--config", bad), "not valid YAML")
