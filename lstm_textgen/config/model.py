"""The model: section: the recurrent stack, its dropouts and regularizers, and the training objective."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from lstm_textgen.config.setting import setting
from lstm_textgen.config.values import Key

_UNROLLED = "needs the unrolled CPU step (train.unrolled)"
_AUTO = ("auto: set when the run starts from the passes its budget buys and its weights per training token, "
         "and kept in the run's config.yaml (docs/guides/recipes.md)")


@dataclass
class ModelConfig:
    rnn: Literal["lstm", "gru"] = setting("lstm", help="lstm or gru")
    units: int = setting(128, 1, cap=65_536, help="units per recurrent layer")
    layers: int = setting(1, 1, cap=64, help="stacked recurrent layers")
    bidirectional: bool = setting(False, help="only with objective last (a backward pass would see the targets)")
    dropout: float | Literal["auto"] = setting(0.1, 0.0, 1.0, high_open=True, finetune="differs",
                                               help="dropout on each recurrent layer's inputs; " + _AUTO)
    input_dropout: Optional[float] = setting(None, 0.0, 1.0, high_open=True, null="for model.dropout's",
                                             finetune="differs",
                                             help="dropout on the first recurrent layer's inputs (the embeddings) if it "
                                                  "should differ; null = dropout")
    recurrent_dropout: float = setting(0.0, 0.0, 1.0, high_open=True, finetune="differs",
                                       help="dropout on the recurrent state; > 0 keeps Keras off the fused cuDNN "
                                            "kernel on a GPU")
    weight_drop: float | Literal["auto"] = setting(
        0.0, 0.0, 1.0, high_open=True, finetune="differs",
        help="DropConnect (AWD-LSTM): in training, each step drops this share of each LSTM's recurrent kernel weights "
             "(one mask a batch); the saved model is the plain LSTM; " + _UNROLLED + "; " + _AUTO
             + " (0 where Keras' own step trains)")
    embedding_dropout: float = setting(0.0, 0.0, 1.0, high_open=True, finetune="differs",
                                       help="AWD-LSTM's embedding dropout: in training, each step drops this share of "
                                            "the vocabulary's embedding rows (a dropped word is zeros wherever it "
                                            "occurs in the batch); " + _UNROLLED)
    activation_reg: float = setting(0.0, 0.0, cap=1.0e4, finetune="differs",
                                    help="AR (AWD-LSTM): in training, this times the mean square of the softmax "
                                         "layer's input is added to the loss (AWD-LSTM: 2); " + _UNROLLED)
    temporal_reg: float = setting(0.0, 0.0, cap=1.0e4, finetune="differs",
                                  help="TAR: in training, this times the mean square of the last LSTM's change from "
                                       "one position to the next (AWD-LSTM: 1); needs objective sequence and "
                                       "the unrolled CPU step")
    dense_units: int = setting(128, 1, cap=65_536, help="the Dense layer between the recurrent stack and the softmax")
    dense_activation: Literal["relu", "linear", "tanh"] = setting(
        "relu", help="relu, linear (a plain projection, as tied recipes use) or tanh")
    dense_dropout: float | Literal["auto"] = setting(0.2, 0.0, 1.0, high_open=True, finetune="differs",
                                                     help="dropout after that Dense layer; " + _AUTO)
    objective: Literal["sequence", "last"] = setting(
        "sequence", help="sequence (a target at every position) or last (one target per window)")
    tie_weights: bool = setting(False, help="output layer = the embedding matrix transposed (fewer parameters); needs "
                                            "dense_units = embedding.dim")
    init_range: Optional[float] = setting(None, 0.0, low_open=True, cap=10.0,
                                          help="start the embedding and the output layer uniform in [-r, r] (PyTorch's "
                                               "word LM: 0.1); null = Keras' defaults")

    def recurrent_layers(self) -> list[str]:
        """The recurrent layers' names, as build_model gives them: lstm_1, lstm_2, ... (gru_1, ...)."""
        return [f"{self.rnn}_{i + 1}" for i in range(self.layers)]

    def weighted_layers(self) -> list[str]:
        """The names of the layers that hold weights, input to output (those train.freeze may name)."""
        return ["embedding", *self.recurrent_layers(), "dense", "next_word"]

    def problems(self, key: Key) -> list[str]:
        if self.bidirectional and self.objective == "sequence":
            return [f"{key('bidirectional')} needs model.objective=last (with sequence, the backward direction would "
                    "see the targets); set --set model.objective=last or model.bidirectional=false"]
        return []
