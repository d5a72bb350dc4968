"""The generate: section: how generation picks each next token and when it stops. The YAML section, the library's
settings, the generate flags and the HTTP request fields are these declarations; every key may change at any
time (it does not touch training)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from lstm_textgen.config.setting import range_problems, setting
from lstm_textgen.config.values import Key, shown
from lstm_textgen.errors import ConfigError
from lstm_textgen.usertext import text_problem

MAX_LOGIT_BIAS = 300  # entries of logit_bias, as OpenAI allows


@dataclass
class GenerateConfig:
    length: int = setting(60, 0, cap=10_000_000, flag="-n/--length", http="max_tokens", resume=True,
                          help="tokens to generate, at most")
    temperature: float = setting(0.8, 0.0, flag="-t/--temperature", http="temperature", resume=True,
                                 help="sampling temperature; lower is safer, 0 = greedy (the likeliest token)")
    top_k: int = setting(0, 0, cap=10_000_000, flag="--top-k", http="top_k", resume=True,
                         help="sample among the k likeliest tokens; 0 = off")
    top_p: float = setting(1.0, 0.0, 1.0, low_open=True, flag="--top-p", http="top_p", resume=True,
                           help="sample from the smallest set of tokens holding this probability; 1 = off")
    min_p: float = setting(0.0, 0.0, 1.0, flag="--min-p", http="min_p", resume=True,
                           help="keep only the tokens at least this many times as likely as the likeliest (llama.cpp's "
                                "min_p, before the temperature); 0 = off")
    greedy: bool = setting(False, flag="--greedy", resume=True,
                           help="always take the likeliest token (as temperature 0 does)")
    repetition_penalty: float = setting(1.0, 0.0, low_open=True, flag="--repetition-penalty",
                                        http="repetition_penalty", resume=True,
                                        help="above 1 discourages tokens already in the text")
    frequency_penalty: float = setting(0.0, -2.0, 2.0, flag="--frequency-penalty", http="frequency_penalty",
                                       resume=True, help="lower each token's logit by this times the times it was "
                                                         "drawn so far (OpenAI's; the seed is not counted); 0 = off")
    presence_penalty: float = setting(0.0, -2.0, 2.0, flag="--presence-penalty", http="presence_penalty",
                                      resume=True, help="lower the logit of each token drawn so far by this, once "
                                                        "(OpenAI's; the seed is not counted); 0 = off")
    logit_bias: dict[int, float] = setting(factory=dict, low=-100.0, high=100.0, http="logit_bias", resume=True,
                                           help="token id -> a bias added to its logit (OpenAI's; -100 bans the "
                                                "token, 100 all but forces it); empty = off")
    no_repeat_ngram_size: int = setting(0, 0, cap=10_000, flag="--no-repeat-ngram-size", http="no_repeat_ngram_size",
                                        resume=True, help="never repeat an n-gram of this size; 0 = off")
    min_length: int = setting(0, 0, cap=10_000_000, flag="--min-length", resume=True,
                              help="tokens before any stop condition applies")
    stop: list[str] = setting(factory=list, flag="--stop", http="stop", resume=True,
                              help="stop once the new text contains one of these")
    stop_newlines: int = setting(0, 0, cap=10_000_000, flag="--stop-newlines", resume=True,
                                 help="stop after this many newlines; 0 = off")
    chat_template: Optional[str] = setting(None, resume=True,
                                           help="serve's chat: a Jinja2 template rendering `messages` (each role and "
                                                "content) into one prompt; null = each turn as its role, a colon, a "
                                                "new line, the text and a blank line")

    def problems(self, key: Key) -> list[str]:
        return [message for failed, message in (
            (0 <= self.length < self.min_length, f"{key('min_length')} {self.min_length} is more than "
                                                 f"{key('length')} {self.length}"),
            (any(s == "" for s in self.stop), f"{key('stop')} needs a non-empty TEXT"),
            (len(self.logit_bias) > MAX_LOGIT_BIAS, f"{key('logit_bias')} may bias at most {MAX_LOGIT_BIAS} tokens, "
                                                    f"got {len(self.logit_bias):,}"),
            *((True, f"{key('logit_bias')} names token id {token}; token ids are >= 0")
              for token in sorted(self.logit_bias)[:1] if token < 0),
            *((True, f"{key('stop')} {shown(s)} holds {text_problem(s)}; give plain text")
              for s in self.stop if text_problem(s) is not None),
            *((True, f"{key('chat_template')} is not a Jinja2 template: {problem}")
              for problem in [_template_problem(self.chat_template)] if problem)) if failed]

    def vocabulary_problem(self, vocab_size: int, key: Key = lambda name: f"generate.{name}") -> str | None:
        """What is wrong with the token ids of logit_bias for a run of vocab_size tokens, or None."""
        outside = [token for token in self.logit_bias if not 0 <= token < vocab_size]
        if outside:
            return (f"{key('logit_bias')} names token id {outside[0]}, outside the run's vocabulary (ids 0 to "
                    f"{vocab_size - 1:,})")
        return None

    def check(self, key: Key = lambda name: f"generate.{name}") -> "GenerateConfig":
        """Raise one ConfigError naming every bad value, with the keys as key() spells them; returns self."""
        problems = range_problems(self, key) or self.problems(key)
        if problems:
            raise ConfigError("; ".join(problems))
        return self


def _template_problem(source: str | None) -> str | None:
    """Why a chat template does not parse, or None (it is rendered only by serve, in Jinja2's sandbox)."""
    if source is None:
        return None
    import jinja2

    try:
        jinja2.Environment().parse(source)
    except jinja2.TemplateSyntaxError as e:
        return f"{e.message} (line {e.lineno})"
    return None
