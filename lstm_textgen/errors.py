"""The user-facing error types: the CLI prints their message as one `Error:` line."""


class TextgenError(Exception):
    """A user's mistake or an unusable input; the message says what and how to fix it."""


class ConfigError(TextgenError):
    """A config file, key or value that cannot be used."""


class CorpusError(TextgenError):
    """A corpus that is missing, empty, binary, not UTF-8 or too short."""


class EmbeddingError(TextgenError):
    """A pretrained vector file that is missing, malformed or of the wrong dimension."""


class TokenizerError(TextgenError):
    """A tokenizer file that is missing, unreadable or not one."""


class CheckpointError(TextgenError):
    """A run directory that is missing, incomplete or corrupt."""


class TrainingError(TextgenError):
    """Training that cannot go on as configured (its loss diverged)."""


class ExportError(TextgenError):
    """An export that cannot be made, or that does not match the run when checked."""
