"""The settings: a dataclass per YAML section, each field's type, default and allowed range, and the checks on
combinations of values (stdlib + yaml only).

A number field declares its range with values.bounded(); every value is checked against it once, on the final
values, however it arrived (YAML, --set, a command flag).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from lstm_textgen.config.values import Key, bounded, range_problems, run_name, shown
from lstm_textgen.errors import ConfigError
from lstm_textgen.usertext import text_problem

DEFAULT_CORPUS = "data/tinyshakespeare.txt"
META_KEY = "lstm_textgen"  # {version, schema} written into saved config.yaml files
ORIGIN_KEY = "origin"  # a fine-tuned run's record of its base run in its config.yaml: read back, never a setting


def _problems(*checks: tuple[bool, str]) -> list[str]:
    return [message for failed, message in checks if failed]


@dataclass
class DataConfig:
    corpus: str = DEFAULT_CORPUS  # a file, a folder of .txt files, or a glob
    level: Literal["word", "whitespace", "char", "bpe"] = "word"  # whitespace: pre-tokenized text (PTB, WikiText)
    lowercase: bool = True
    max_vocab: Optional[int] = bounded(10000, 3, cap=10_000_000)  # includes <pad> and <unk>; null = no cap
    min_count: int = bounded(1, 1, cap=2**31 - 1)
    window_size: int = bounded(20, 1, cap=100_000)
    val_fraction: float = bounded(0.1, 0.0, 1.0, low_open=True, high_open=True)
    val_corpus: Optional[str] = None  # a separate validation text (file, folder or glob); null = each file's tail
    stride: Optional[int] = bounded(None, 1, cap=100_000)  # null = 1 for objective last, window_size for sequence
    base_vocab: Literal["keep", "extend"] = "keep"  # with train.init_from: the base run's vocabulary, or it + new words

    def problems(self, key: Key) -> list[str]:
        return _problems(
            (not self.corpus.strip(), f"{key('corpus')} must name a file, folder or glob, got an empty string"),
            (self.val_corpus is not None and not self.val_corpus.strip(),
             f"{key('val_corpus')} must name a file, folder or glob, or be null for each file's tail; got an empty string"),
            (self.level == "bpe" and (self.max_vocab or 0) < 258,  # <pad>, <unk> and a token for every byte
             f"{key('max_vocab')} is the vocabulary size data.level=bpe learns up to: at least 258 (<pad>, <unk> and "
             f"the 256 bytes), got {'null' if self.max_vocab is None else self.max_vocab}; set e.g. --set {key('max_vocab')}=4000"),
            (self.level == "bpe" and self.base_vocab == "extend",
             f"{key('base_vocab')}=extend adds words to a word, whitespace or char vocabulary; the bpe level encodes any "
             f"text with the base run's merges: set --set {key('base_vocab')}=keep"))


@dataclass
class EmbeddingConfig:
    path: Optional[str] = None  # pretrained vectors (GloVe / word2vec / fastText text, .gz ok); null = learn from scratch
    dim: int = bounded(100, 1, cap=65_536)
    trainable: bool = True  # only matters with a path: without one the embedding is always trained
    missing: Literal["zeros", "random"] = "zeros"


@dataclass
class ModelConfig:
    rnn: Literal["lstm", "gru"] = "lstm"
    units: int = bounded(128, 1, cap=65_536)  # units per recurrent layer
    layers: int = bounded(1, 1, cap=64)
    bidirectional: bool = False
    dropout: float = bounded(0.1, 0.0, 1.0, high_open=True)  # on each recurrent layer's inputs
    input_dropout: Optional[float] = bounded(None, 0.0, 1.0, high_open=True, null="for model.dropout's")  # the first layer's (embeddings)
    recurrent_dropout: float = bounded(0.0, 0.0, 1.0, high_open=True)  # > 0 keeps Keras off the fused cuDNN kernel
    weight_drop: float = bounded(0.0, 0.0, 1.0, high_open=True)  # DropConnect on the recurrent kernels (AWD-LSTM); unrolled step
    embedding_dropout: float = bounded(0.0, 0.0, 1.0, high_open=True)  # whole words' embedding rows (AWD-LSTM); unrolled step
    activation_reg: float = bounded(0.0, 0.0, cap=1.0e4)  # AR: penalty on the softmax input's mean square (AWD-LSTM); unrolled step
    temporal_reg: float = bounded(0.0, 0.0, cap=1.0e4)  # TAR: penalty on the last LSTM's step-to-step change; unrolled step
    dense_units: int = bounded(128, 1, cap=65_536)
    dense_activation: Literal["relu", "linear", "tanh"] = "relu"  # linear: a projection, as the tied recipes use
    dense_dropout: float = bounded(0.2, 0.0, 1.0, high_open=True)
    objective: Literal["sequence", "last"] = "sequence"
    tie_weights: bool = False  # the output layer uses the embedding matrix transposed; needs dense_units = embedding.dim
    init_range: Optional[float] = bounded(None, 0.0, low_open=True, cap=10.0)  # embedding and output uniform in +-r; null = Keras'

    def recurrent_layers(self) -> list[str]:
        """The recurrent layers' names, as build_model gives them: lstm_1, lstm_2, ... (gru_1, ...)."""
        return [f"{self.rnn}_{i + 1}" for i in range(self.layers)]

    def weighted_layers(self) -> list[str]:
        """The names of the layers that hold weights, input to output (those train.freeze may name)."""
        return ["embedding", *self.recurrent_layers(), "dense", "next_word"]

    def problems(self, key: Key) -> list[str]:
        return _problems(
            (self.bidirectional and self.objective == "sequence",
             f"{key('bidirectional')} needs model.objective=last (with sequence, the backward direction would see "
             "the targets); set --set model.objective=last or model.bidirectional=false"))


@dataclass
class TrainConfig:
    run_dir: Optional[str] = None  # null = runs/<corpus name>
    init_from: Optional[str] = None  # a trained run to start from (fine-tuning); null = from scratch
    freeze: list[str] = field(default_factory=list)  # layers that keep the base run's weights (with init_from)
    epochs: int = bounded(10, 1, cap=10_000_000)
    steps_per_epoch: Optional[int] = bounded(None, 1, cap=2**40)  # null = one full pass over the training windows
    batch_size: int | Literal["auto"] = bounded(64, 1, cap=1_000_000)  # auto: from the corpus (data.batch_size_for)
    optimizer: Literal["adam", "sgd"] = "adam"  # sgd: plain gradient descent, as the PyTorch word language model
    learning_rate: float = bounded(1.0e-3, 0.0, low_open=True, cap=1.0e4)
    clipnorm: Optional[float] = bounded(1.0, 0.0, low_open=True)  # null = no gradient clipping
    global_clipnorm: Optional[float] = bounded(None, 0.0, low_open=True)  # clip all gradients together; null = off
    seed: int = bounded(42, 0, cap=2**32 - 1)
    early_stopping_patience: Optional[int] = bounded(3, 1, cap=10_000_000)  # epochs without improvement; null = off
    keep_checkpoints: int = bounded(3, 0, cap=10_000_000)  # per-epoch checkpoints kept (the best is always kept)
    backup_every_steps: Optional[int] = bounded(200, 1, cap=2**40)  # resumable state saved this often; null = per epoch
    sample_every: Optional[int] = bounded(1, 1, cap=10_000_000, null="to turn epoch samples off")
    sample_seed: Optional[str] = None  # null = the first words of the training text
    sample_length: int = bounded(30, 1, cap=100_000)  # tokens per epoch sample
    tensorboard: bool = False  # write TensorBoard logs under <run_dir>/tensorboard
    mixed_precision: bool = False  # float16 compute, float32 weights (faster on recent GPUs)
    unrolled: bool = True  # on a CPU, train with the unrolled step of lstm_textgen/model/step.py (same model, faster)
    bfloat16: bool = False  # the unrolled step multiplies in bfloat16, where the CPU has bfloat16 matrix units
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"  # multi_worker reads TF_CONFIG
    max_minutes: Optional[float] = bounded(None, 0.0, low_open=True, cap=1.0e7, null="for no time limit")
    stateful: bool = False  # batch_size parallel streams, recurrent state carried from window to window (TBPTT)
    reduce_lr_patience: Optional[int] = bounded(None, 1, cap=10_000_000, null="to keep the learning rate")
    reduce_lr_factor: float = bounded(0.5, 0.0, 1.0, low_open=True, high_open=True)  # multiplier on a plateau
    reduce_lr_min_delta: float = bounded(0.0, 0.0)  # a val_loss must be more than this below the best (Keras' min_delta)
    min_learning_rate: float = bounded(0.0, 0.0)  # the plateau schedule never goes below this; the decay ends at it
    lr_decay: Literal["none", "linear", "cosine"] = "none"  # to min_learning_rate by the end of max_minutes or epochs
    # (with reduce_lr_patience, a plateau multiplies the whole curve by reduce_lr_factor)
    ema_momentum: Optional[float] = bounded(None, 0.0, 1.0, low_open=True, high_open=True,
                                            null="for no averaging")
    # validate and save a moving average of the weights (Keras' use_ema); training goes on from the raw weights

    def problems(self, key: Key) -> list[str]:
        return _problems(
            (self.clipnorm is not None and self.global_clipnorm is not None,
             f"{key('clipnorm')} and {key('global_clipnorm')} are both set, and a gradient is clipped one way; "
             "set --set train.clipnorm=null to clip by the global norm"),
            (self.sample_seed is not None and not self.sample_seed.strip(),
             f"{key('sample_seed')} must be a phrase, or null for the training text's first words; got an empty "
             "string"),
            (self.sample_seed is not None and text_problem(self.sample_seed) is not None,
             f"{key('sample_seed')} holds {text_problem(self.sample_seed or '')}; give plain text"),
            (self.stateful and self.distribute != "none",
             f"{key('stateful')} carries one recurrent state per stream on one device; set --set "
             "train.distribute=none or train.stateful=false"),
            (self.lr_decay != "none" and self.min_learning_rate >= self.learning_rate,
             f"{key('lr_decay')} falls from {key('learning_rate')} {self.learning_rate:g} to {key('min_learning_rate')} "
             f"{self.min_learning_rate:g}, which must be lower"),
        )


@dataclass
class GenerateConfig:
    """How generation picks each next token and when it stops: the YAML section, the library's settings and
    the generate flags (--top-k for top_k) are this one dataclass."""
    length: int = bounded(60, 0, cap=10_000_000)  # at most this many tokens
    temperature: float = bounded(0.8, 0.0, low_open=True)  # > 0; lower is more conservative
    top_k: int = bounded(0, 0, cap=10_000_000)  # sample among the k likeliest tokens; 0 = off
    top_p: float = bounded(1.0, 0.0, 1.0, low_open=True)  # nucleus mass; 1.0 = off
    greedy: bool = False  # always take the likeliest token
    repetition_penalty: float = bounded(1.0, 0.0, low_open=True)  # > 1 discourages tokens already in the text
    no_repeat_ngram_size: int = bounded(0, 0, cap=10_000)  # never repeat an n-gram of this size; 0 = off
    min_length: int = bounded(0, 0, cap=10_000_000)  # no stop condition applies before this many tokens
    stop: list[str] = field(default_factory=list)  # stop once the new text contains one of these
    stop_newlines: int = bounded(0, 0, cap=10_000_000)  # stop after this many newlines; 0 = off

    def problems(self, key: Key) -> list[str]:
        return _problems(
            (0 <= self.length < self.min_length, f"{key('min_length')} {self.min_length} is more than "
                                                 f"{key('length')} {self.length}"),
            (any(s == "" for s in self.stop), f"{key('stop')} needs a non-empty TEXT"),
            *((True, f"{key('stop')} {shown(s)} holds {text_problem(s)}; give plain text")
              for s in self.stop if text_problem(s) is not None))

    def check(self, key: Key = lambda name: f"generate.{name}") -> "GenerateConfig":
        """Raise one ConfigError naming every bad value, with the keys as key() spells them; returns self."""
        problems = range_problems(self, key) or self.problems(key)
        if problems:
            raise ConfigError("; ".join(problems))
        return self


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def problems(self) -> list[str]:
        """Combinations of keys from different sections that cannot train."""
        model, train, embedding = self.model, self.train, self.embedding
        return _problems(
            (model.tie_weights and model.dense_units != embedding.dim,
             f"model.tie_weights needs model.dense_units equal to embedding.dim (the output layer is the embedding "
             f"matrix transposed), got {model.dense_units} and {embedding.dim}; set --set model.dense_units="
             f"{embedding.dim} or model.tie_weights=false"),
            (model.tie_weights and bool(embedding.path) and not embedding.trainable,
             "model.tie_weights with a frozen pretrained embedding would freeze the output layer too; set --set "
             "embedding.trainable=true or model.tie_weights=false"),
            (bool(embedding.path) and self.data.level == "bpe",
             "embedding.path gives word vectors, which do not apply to data.level=bpe's subword tokens; set --set "
             "embedding.path=null or another data.level"),
            (model.temporal_reg > 0 and model.objective != "sequence",
             "model.temporal_reg penalises the change of the last LSTM's output from one position to the next, "
             "which needs model.objective=sequence; set --set model.objective=sequence or model.temporal_reg=0"),
            (train.stateful and model.objective != "sequence",
             "train.stateful needs model.objective=sequence (a target at every position of consecutive windows); "
             "set --set model.objective=sequence or train.stateful=false"),
        )

    @property
    def run_dir(self) -> Path:
        """train.run_dir, or runs/<a name made from the corpus>: always one plain folder name under runs/."""
        if self.train.run_dir:
            return Path(self.train.run_dir)
        return Path("runs") / run_name(self.data.corpus)
