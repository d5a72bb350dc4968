"""The stamp of a run's saved config.yaml: config_yaml writes the resolved config (and a fine-tuned run's origin
after it), then an lstm_textgen: {version, schema} block as its last lines, so a file cut short lacks it;
check_saved_meta refuses a file without it. Runs of 0.1 have the block first."""
from __future__ import annotations

from pathlib import Path

from lstm_textgen import __version__
from lstm_textgen.atomic import write_text
from lstm_textgen.config import META_KEY, ORIGIN_KEY, Config
from lstm_textgen.errors import ConfigError
from lstm_textgen.config.values import shown

SCHEMA_VERSION = 1  # bump when a saved config.yaml can no longer be read as before


def config_yaml(config: Config, version: str, origin: dict | None = None) -> str:
    """The resolved config as YAML, stamped with the schema and lstm-textgen version; a fine-tuned run's
    origin (its base run) follows the settings."""
    import yaml

    body = {**config.to_dict(), **({ORIGIN_KEY: origin} if origin else {}),
            META_KEY: {"version": version, "schema": SCHEMA_VERSION}}
    return yaml.safe_dump(body, sort_keys=False)


def save_config(path: Path, config: Config, origin: dict | None = None) -> None:
    """A run's config.yaml (path), stamped with this version, written atomically."""
    write_text(path, config_yaml(config, __version__, origin))


def check_saved_meta(raw: dict, path: Path) -> None:
    """Refuse a saved config.yaml that lstm-textgen did not write, or wrote with a schema this version cannot read."""
    meta = raw.get(META_KEY) or {}
    schema = meta.get("schema") if isinstance(meta, dict) else None
    if schema is None:
        raise ConfigError(f"{path} is {'empty' if not raw else 'damaged'}: it lacks the {META_KEY}: stamp that "
                          "lstm-textgen writes at the end of a run's config (a file cut short loses it)")
    if schema != SCHEMA_VERSION:
        made_by = meta.get("version", "an unknown version") if isinstance(meta, dict) else "an unknown version"
        raise ConfigError(f"{path} has config schema {shown(schema)} (written by lstm-textgen {shown(made_by)}); "
                          f"this lstm-textgen reads schema {SCHEMA_VERSION}: retrain the run with this version")
