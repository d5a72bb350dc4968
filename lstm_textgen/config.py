"""Typed config: a dataclass per YAML section, load_config(), and --set overrides (stdlib + yaml only)."""
from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import yaml

from lstm_textgen.errors import ConfigError

SCHEMA_VERSION = 1  # bump when a saved config.yaml can no longer be read as before
DEFAULT_CORPUS = "data/tinyshakespeare.txt"


def _problems(*checks: tuple[bool, str]) -> list[str]:
    return [message for failed, message in checks if failed]


@dataclass
class DataConfig:
    corpus: str = DEFAULT_CORPUS  # a file, a folder of .txt files, or a glob
    level: Literal["word", "whitespace", "char"] = "word"  # whitespace: pre-tokenized text (PTB, WikiText)
    lowercase: bool = True
    max_vocab: Optional[int] = 10000  # includes <pad> and <unk>; null = no cap
    min_count: int = 1
    window_size: int = 20
    val_fraction: float = 0.1
    stride: Optional[int] = None  # null = 1 for objective last, window_size for sequence

    def problems(self) -> list[str]:
        return _problems(
            (self.max_vocab is not None and self.max_vocab < 3,
             f"data.max_vocab must be >= 3 (room for <pad>, <unk> and one word) or null, got {self.max_vocab}"),
            (self.min_count < 1, f"data.min_count must be >= 1, got {self.min_count}"),
            (self.window_size < 1, f"data.window_size must be >= 1, got {self.window_size}"),
            (not 0.0 < self.val_fraction < 1.0,
             f"data.val_fraction must be between 0 and 1 (exclusive), got {self.val_fraction}"),
            (self.stride is not None and self.stride < 1, f"data.stride must be >= 1 or null, got {self.stride}"),
            (not self.corpus.strip(), "data.corpus must name a file, folder or glob, got an empty string"),
        )


@dataclass
class EmbeddingConfig:
    path: Optional[str] = None  # pretrained vectors (GloVe / word2vec / fastText text, .gz ok); null = learn from scratch
    dim: int = 100
    trainable: bool = True  # only matters with a path: without one the embedding is always trained
    missing: Literal["zeros", "random"] = "zeros"

    def problems(self) -> list[str]:
        return _problems((self.dim < 1, f"embedding.dim must be >= 1, got {self.dim}"))


@dataclass
class ModelConfig:
    rnn: Literal["lstm", "gru"] = "lstm"
    units: int = 128  # units per recurrent layer
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.1
    recurrent_dropout: float = 0.0  # > 0 keeps Keras off the fused cuDNN kernel on a GPU
    dense_units: int = 128
    dense_dropout: float = 0.2
    objective: Literal["sequence", "last"] = "sequence"
    tie_weights: bool = False  # the output layer uses the embedding matrix transposed; needs dense_units = embedding.dim

    def problems(self) -> list[str]:
        rates = [(name, getattr(self, name)) for name in ("dropout", "recurrent_dropout", "dense_dropout")]
        return _problems(
            (self.units < 1, f"model.units must be >= 1, got {self.units}"),
            (self.layers < 1, f"model.layers must be >= 1, got {self.layers}"),
            (self.dense_units < 1, f"model.dense_units must be >= 1, got {self.dense_units}"),
            *[(not 0.0 <= rate < 1.0, f"model.{name} must be in [0, 1), got {rate}") for name, rate in rates],
            (self.bidirectional and self.objective == "sequence",
             "model.bidirectional needs model.objective=last (with sequence, the backward "
             "direction would see the targets); set --set model.objective=last or model.bidirectional=false"),
        )


@dataclass
class TrainConfig:
    run_dir: Optional[str] = None  # null = runs/<corpus name>
    epochs: int = 10
    steps_per_epoch: Optional[int] = None  # null = one full pass over the training windows
    batch_size: int = 64
    optimizer: Literal["adam", "sgd"] = "adam"  # sgd: plain gradient descent, as the PyTorch word language model
    learning_rate: float = 1.0e-3
    clipnorm: Optional[float] = 1.0  # null = no gradient clipping
    global_clipnorm: Optional[float] = None  # clip all gradients together to this norm; null = off
    seed: int = 42
    early_stopping_patience: Optional[int] = 3  # epochs without val_loss improvement; null = off
    keep_checkpoints: int = 3  # per-epoch checkpoints kept (the best is always kept)
    backup_every_steps: Optional[int] = 200  # resumable state saved this often inside an epoch; null = per epoch
    sample_every: Optional[int] = 1  # print and save a sample every this many epochs; null = off
    sample_seed: Optional[str] = None  # null = the first words of the training text
    sample_length: int = 30  # tokens per epoch sample
    tensorboard: bool = False  # write TensorBoard logs under <run_dir>/tensorboard
    mixed_precision: bool = False  # float16 compute, float32 weights (faster on recent GPUs)
    unrolled: bool = True  # on a CPU, train with the unrolled step of lstm_textgen/unrolled.py (same model, faster)
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"  # multi_worker reads TF_CONFIG
    max_minutes: Optional[float] = None  # stop cleanly once this much training time is spent; null = no limit
    stateful: bool = False  # batch_size parallel streams, recurrent state carried from window to window (TBPTT)
    reduce_lr_patience: Optional[int] = None  # epochs without a better val_loss before the learning rate drops; null = off
    reduce_lr_factor: float = 0.5  # the learning rate is multiplied by this on a plateau
    reduce_lr_min_delta: float = 0.0  # a val_loss must be more than this below the plateau's best to count as better (Keras' min_delta)
    min_learning_rate: float = 0.0  # the plateau schedule never goes below this

    def problems(self) -> list[str]:
        return _problems(
            (self.epochs < 1, f"train.epochs must be >= 1, got {self.epochs}"),
            (self.steps_per_epoch is not None and self.steps_per_epoch < 1,
             f"train.steps_per_epoch must be >= 1 or null, got {self.steps_per_epoch}"),
            (self.batch_size < 1, f"train.batch_size must be >= 1, got {self.batch_size}"),
            (self.learning_rate <= 0, f"train.learning_rate must be > 0, got {self.learning_rate}"),
            (self.clipnorm is not None and self.clipnorm <= 0, f"train.clipnorm must be > 0 or null, got {self.clipnorm}"),
            (self.global_clipnorm is not None and self.global_clipnorm <= 0,
             f"train.global_clipnorm must be > 0 or null, got {self.global_clipnorm}"),
            (self.clipnorm is not None and self.global_clipnorm is not None,
             "train.clipnorm and train.global_clipnorm are both set, and a gradient is clipped one way; "
             "set --set train.clipnorm=null to clip by the global norm"),
            (self.seed < 0, f"train.seed must be >= 0, got {self.seed}"),
            (self.early_stopping_patience is not None and self.early_stopping_patience < 1,
             f"train.early_stopping_patience must be >= 1 or null, got {self.early_stopping_patience}"),
            (self.keep_checkpoints < 0, f"train.keep_checkpoints must be >= 0, got {self.keep_checkpoints}"),
            (self.backup_every_steps is not None and self.backup_every_steps < 1,
             f"train.backup_every_steps must be >= 1 or null, got {self.backup_every_steps}"),
            (self.sample_every is not None and self.sample_every < 1,
             f"train.sample_every must be >= 1, or null to turn epoch samples off, got {self.sample_every}"),
            (self.sample_seed is not None and not self.sample_seed.strip(),
             "train.sample_seed must be a phrase, or null for the training text's first words; got an empty string"),
            (self.sample_length < 1, f"train.sample_length must be >= 1, got {self.sample_length}"),
            (self.max_minutes is not None and self.max_minutes <= 0,
             f"train.max_minutes must be > 0, or null for no time limit, got {self.max_minutes}"),
            (self.reduce_lr_patience is not None and self.reduce_lr_patience < 1,
             f"train.reduce_lr_patience must be >= 1, or null to keep the learning rate, got {self.reduce_lr_patience}"),
            (not 0.0 < self.reduce_lr_factor < 1.0,
             f"train.reduce_lr_factor must be between 0 and 1 (exclusive), got {self.reduce_lr_factor}"),
            (self.min_learning_rate < 0, f"train.min_learning_rate must be >= 0, got {self.min_learning_rate}"),
            (self.reduce_lr_min_delta < 0,
             f"train.reduce_lr_min_delta must be >= 0 (0 = any lower val_loss is better), got {self.reduce_lr_min_delta}"),
            (self.stateful and self.distribute != "none",
             "train.stateful carries one recurrent state per stream on one device; set --set train.distribute=none "
             "or train.stateful=false"),
        )


@dataclass
class GenerateConfig:
    length: int = 60  # tokens to generate
    temperature: float = 0.8
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off

    def problems(self) -> list[str]:
        return _problems(
            (self.length < 0, f"generate.length must be >= 0, got {self.length}"),
            (self.temperature <= 0, f"generate.temperature must be > 0, got {self.temperature}"),
            (self.top_k < 0, f"generate.top_k must be >= 0, got {self.top_k}"),
            (not 0.0 < self.top_p <= 1.0, f"generate.top_p must be in (0, 1], got {self.top_p}"),
        )


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
            (train.stateful and model.objective != "sequence",
             "train.stateful needs model.objective=sequence (a target at every position of consecutive windows); "
             "set --set model.objective=sequence or train.stateful=false"),
        )

    @property
    def run_dir(self) -> Path:
        if self.train.run_dir:
            return Path(self.train.run_dir)
        name = Path(self.data.corpus.rstrip("/*")).stem or "run"
        return Path("runs") / name


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]
META_KEY = "lstm_textgen"  # {version, schema} written into saved config.yaml files


def _field_types(section_cls: type) -> dict[str, object]:
    return typing.get_type_hints(section_cls)


def all_keys() -> list[str]:
    return [f"{s}.{k}" for s, cls in SECTIONS.items() for k in _field_types(cls)]


def _nearest(key: str) -> str:
    match = difflib.get_close_matches(key, all_keys(), n=1, cutoff=0.6)
    if not match:  # a misspelt section name: compare the part after the dot too
        tail = key.rsplit(".", 1)[-1]
        match = [k for k in all_keys() if k.endswith("." + tail)][:1]
    return f" (did you mean '{match[0]}'?)" if match else f" (valid sections: {', '.join(SECTIONS)})"


def _type_name(tp: object) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in args)
    if type(None) in args:
        return f"{_type_name(next(a for a in args if a is not type(None)))} or null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: object, tp: object) -> object:
    """Return value as type tp, or raise ValueError; ints are accepted for floats, never bools for numbers."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Literal:
        if isinstance(value, str) and value.lower() in args:
            return value.lower()
        raise ValueError
    if type(None) in args:
        return None if value is None else _convert(value, next(a for a in args if a is not type(None)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-3 as a string; accept it anyway
            return float(value)
        raise ValueError
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError
    raise ValueError


def read_yaml(path: str | os.PathLike, what: str = "config file") -> dict:
    """Read a YAML mapping with yaml.safe_load, turning every failure into one ConfigError line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; give a .yaml file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{what} {path} is not valid YAML{where}: {problem}; fix the syntax") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must be a mapping of sections (data:, model:, ...), "
                          f"got a {type(raw).__name__}")
    return raw


def parse_override(text: str) -> tuple[str, object]:
    """Split 'model.units=128' into ('model.units', 128), reading the value as YAML."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE such as model.units=128, got '{text}'")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value  # not YAML: keep the text and let the field's type decide
    return key, parsed


def _merge(raw: dict, key: str, value: object, errors: list[str]) -> None:
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name or "." in name:
        errors.append(f"unknown config key '{key}'{_nearest(key)}")
        return
    target = raw.get(section)
    if not isinstance(target, dict):
        target = raw[section] = {}
    target[name] = value


def load_config(path: str | os.PathLike | None = None, overrides: typing.Iterable[str] = (),
                values: dict[str, object] | None = None) -> Config:
    """Resolve defaults <- YAML file <- --set overrides <- explicit values; validate once, raise once."""
    raw = read_yaml(path) if path is not None else {}
    raw.pop(META_KEY, None)
    errors: list[str] = []
    for text in overrides:
        _merge(raw, *parse_override(text), errors)
    for key, value in (values or {}).items():
        _merge(raw, key, value, errors)

    sections: dict[str, object] = {}
    for section, body in raw.items():
        if section not in SECTIONS:
            errors.append(f"unknown config section '{section}'{_nearest(str(section))}")
            continue
        if body is None:
            body = {}
        if not isinstance(body, dict):
            errors.append(f"config section '{section}' must be a mapping of keys, got {body!r}")
            continue
        types = _field_types(SECTIONS[section])
        kwargs = {}
        for name, value in body.items():
            key = f"{section}.{name}"
            if name not in types:
                errors.append(f"unknown config key '{key}'{_nearest(key)}")
                continue
            try:
                kwargs[name] = _convert(value, types[name])
            except (ValueError, TypeError):
                errors.append(f"{key} must be {_type_name(types[name])}, got {value!r}")
        sections[section] = kwargs
    if errors:
        raise ConfigError("; ".join(errors))

    config = Config(**{name: cls(**sections.get(name, {})) for name, cls in SECTIONS.items()})
    problems = [p for name in SECTIONS for p in getattr(config, name).problems()]
    problems = problems or config.problems()  # combinations are judged once each value is valid
    if problems:
        raise ConfigError("; ".join(problems))
    return config


def config_yaml(config: Config, version: str) -> str:
    """The resolved config as YAML, stamped with the schema and lstm-textgen version."""
    body = {META_KEY: {"version": version, "schema": SCHEMA_VERSION}, **config.to_dict()}
    return yaml.safe_dump(body, sort_keys=False)


def check_saved_meta(raw: dict, path: Path) -> None:
    """Refuse a saved config.yaml written with a schema this version cannot read."""
    meta = raw.get(META_KEY) or {}
    schema = meta.get("schema") if isinstance(meta, dict) else None
    if schema != SCHEMA_VERSION:
        made_by = meta.get("version", "an unknown version") if isinstance(meta, dict) else "an unknown version"
        raise ConfigError(f"{path} has config schema {schema!r} (written by lstm-textgen {made_by}); "
                          f"this lstm-textgen reads schema {SCHEMA_VERSION}: retrain the run with this version")
