"""The settings: each YAML section's dataclass (sections.py), the values a person writes read and checked
(values.py), and load_config() (load.py), which resolves them in order of precedence. Everything a stage needs is
importable from here."""
from lstm_textgen.config.load import SECTIONS, all_keys, load_config
from lstm_textgen.config.sections import (DEFAULT_CORPUS, META_KEY, ORIGIN_KEY, Config, DataConfig, EmbeddingConfig,
                                          GenerateConfig, ModelConfig, TrainConfig)

__all__ = ["DEFAULT_CORPUS", "META_KEY", "ORIGIN_KEY", "SECTIONS", "Config", "DataConfig", "EmbeddingConfig",
           "GenerateConfig", "ModelConfig", "TrainConfig", "all_keys", "load_config"]
