"""The train: section: where the run goes and what it starts from, the schedule, the budget, checkpoints and
samples, and how the step runs. A key marked resume=True may change when a run continues."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from lstm_textgen.config.setting import setting
from lstm_textgen.config.values import Key
from lstm_textgen.usertext import text_problem


@dataclass
class TrainConfig:
    run_dir: Optional[str] = setting(None, resume=True, finetune="own",
                                     help="where the run is written; null = runs/<corpus name>")
    init_from: Optional[str] = setting(None, finetune="own",
                                       help="fine-tune: a trained run (train --from) whose weights, tokenizer and "
                                            "settings the run starts from; null = from scratch")
    freeze: list[str] = setting(factory=list, finetune="own",
                                help="with init_from: layers that keep the base run's weights, e.g. [embedding] "
                                     "(embedding, lstm_1 ..., dense, next_word)")
    epochs: int = setting(10, 1, cap=10_000_000, resume=True,
                          help="passes over the training windows (or steps_per_epoch steps each)")
    steps_per_epoch: Optional[int] = setting(None, 1, cap=2**40, resume=True,
                                             help="null = one full pass over the training windows")
    batch_size: int | Literal["auto"] = setting(64, 1, cap=1_000_000,
                                                help="windows per step; auto: as many as make an epoch about 400 "
                                                     "steps, 10 to 40, fewer where the budget would make under "
                                                     "3,000 steps; the run's config.yaml keeps the number")
    optimizer: Literal["adam", "sgd"] = setting(
        "adam", help="adam, or sgd (plain gradient descent, as the PyTorch word language model trains)")
    learning_rate: float = setting(1.0e-3, 0.0, low_open=True, cap=1.0e4, resume=True,
                                   help="the optimizer's learning rate")
    clipnorm: Optional[float] = setting(1.0, 0.0, low_open=True, resume=True,
                                        help="clip each gradient to this norm; null = no clipping")
    global_clipnorm: Optional[float] = setting(None, 0.0, low_open=True, resume=True,
                                               help="clip all gradients together to this norm (PyTorch's "
                                                    "clip_grad_norm_); needs clipnorm: null")
    seed: int = setting(42, 0, cap=2**32 - 1,
                        help="seeds weights, shuffling and dropout: the same config gives the same history on CPU")
    early_stopping_patience: Optional[int] = setting(3, 1, cap=10_000_000, resume=True,
                                                     help="stop after this many epochs without a better val_loss; "
                                                          "null = never")
    keep_checkpoints: int = setting(3, 0, cap=10_000_000, resume=True,
                                    help="per-epoch checkpoints to keep (the best epoch's is always kept)")
    backup_every_steps: Optional[int] = setting(200, 1, cap=2**40, resume=True,
                                                help="save a resumable state this often inside an epoch; null = only "
                                                     "at epoch ends")
    sample_every: Optional[int] = setting(1, 1, cap=10_000_000, null="to turn epoch samples off", resume=True,
                                          help="after every this many epochs, print a sample and add it to "
                                               "samples.txt; null = off")
    sample_seed: Optional[str] = setting(None, resume=True,
                                         help="the sample's seed phrase; null = the first words of the training text")
    sample_length: int = setting(30, 1, cap=100_000, resume=True,
                                 help="tokens per epoch sample (drawn at temperatures 0.5 and 1.0)")
    tensorboard: bool = setting(False, resume=True, help="write TensorBoard logs to <run_dir>/tensorboard")
    mixed_precision: bool = setting(False, help="float16 compute with float32 weights: faster on recent GPUs, no "
                                                "gain on CPU")
    unrolled: bool = setting(True, help="on a CPU, train LSTM stacks with the unrolled step (same model, faster); "
                                        "false = Keras' own loop")
    bfloat16: bool = setting(False, help="true: the unrolled step's matrix products take bfloat16 operands (float32 "
                                         "sums, weights and state), on CPUs with bfloat16 matrix units (Intel AMX or "
                                         "AVX512-BF16; elsewhere it stays float32); faster for large layers and "
                                         "vocabularies")
    distribute: Literal["none", "mirrored", "multi_worker"] = setting(
        "none", help="none, mirrored (all GPUs of this machine) or multi_worker (several machines, reads TF_CONFIG)")
    max_minutes: Optional[float] = setting(None, 0.0, low_open=True, cap=1.0e7, null="for no time limit", resume=True,
                                           help="stop cleanly (validation pass, best model saved) once this many "
                                                "minutes of training are spent, over all resumes; null = no limit")
    stateful: bool = setting(False, help="true: batch_size parallel streams of the text, recurrent state carried from "
                                         "window to window within an epoch (truncated BPTT); needs objective sequence")
    reduce_lr_patience: Optional[int] = setting(None, 1, cap=10_000_000, null="to keep the learning rate",
                                                help="epochs without a better val_loss before the learning rate is "
                                                     "multiplied by reduce_lr_factor; null = constant rate")
    reduce_lr_factor: float = setting(0.5, 0.0, 1.0, low_open=True, high_open=True,
                                      help="the plateau multiplier, in (0, 1)")
    reduce_lr_min_delta: float = setting(0.0, 0.0, help="for the plateau schedule a val_loss is better only when it "
                                                        "is more than this below its best (Keras' min_delta); 0 = any "
                                                        "lower value")
    min_learning_rate: float = setting(0.0, 0.0, help="the plateau schedule never lowers the learning rate below "
                                                      "this; lr_decay ends at it")
    lr_decay: Literal["none", "linear", "cosine"] = setting(
        "none", help="none, linear or cosine: the rate falls to min_learning_rate by the run's end (max_minutes spent "
                     "or epochs done, whichever comes first); with reduce_lr_patience, a plateau multiplies the whole "
                     "curve by reduce_lr_factor")
    ema_momentum: Optional[float] = setting(None, 0.0, 1.0, low_open=True, high_open=True, null="for no averaging",
                                            help="e.g. 0.999: validate and save a moving average of the weights "
                                                 "(Keras' use_ema; training goes on from the trained weights); null "
                                                 "= off")

    def problems(self, key: Key) -> list[str]:
        return [message for failed, message in (
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
             f"{key('lr_decay')} falls from {key('learning_rate')} {self.learning_rate:g} to "
             f"{key('min_learning_rate')} {self.min_learning_rate:g}, which must be lower")) if failed]
