"""The whole config: the five sections (each declared in its own module), the checks on combinations of keys from
different sections, and the run directory a config means."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from lstm_textgen.config.data import DataConfig, EmbeddingConfig
from lstm_textgen.config.generation import GenerateConfig
from lstm_textgen.config.model import ModelConfig
from lstm_textgen.config.training import TrainConfig
from lstm_textgen.config.values import run_name

META_KEY = "lstm_textgen"  # {version, schema} written into saved config.yaml files
ORIGIN_KEY = "origin"  # a fine-tuned run's record of its base run in its config.yaml: read back, never a setting


def _problems(*checks: tuple[bool, str]) -> list[str]:
    return [message for failed, message in checks if failed]


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
