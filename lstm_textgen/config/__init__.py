"""The settings: each YAML section's dataclass, every field declared once with its range, help and policies
(setting.py; data.py, model.py, training.py, generation.py; the whole Config in sections.py), the values a person
writes read and checked (values.py), and load_config() (load.py), which resolves them in order of precedence.
Everything a stage needs is importable from here."""
from lstm_textgen.config.data import DEFAULT_CORPUS, DataConfig, EmbeddingConfig
from lstm_textgen.config.generation import GenerateConfig
from lstm_textgen.config.load import SECTIONS, all_keys, load_config
from lstm_textgen.config.model import ModelConfig
from lstm_textgen.config.sections import META_KEY, ORIGIN_KEY, Config
from lstm_textgen.config.training import TrainConfig

__all__ = ["DEFAULT_CORPUS", "META_KEY", "ORIGIN_KEY", "SECTIONS", "Config", "DataConfig", "EmbeddingConfig",
           "GenerateConfig", "ModelConfig", "TrainConfig", "all_keys", "load_config"]
