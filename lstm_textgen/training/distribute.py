"""Training on several devices or machines: the tf.distribute strategy, the worker's role and its run directory.

train.distribute: none (the default strategy), mirrored (every GPU of this machine, one replica on a CPU)
or multi_worker (several machines, described by the TF_CONFIG environment variable). train.batch_size is
the global batch: each step's batch is split between the replicas.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lstm_textgen.errors import ConfigError
from lstm_textgen.config.values import shown

TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}\'')


@dataclass
class Role:
    """This process's place in the cluster."""
    kind: str = "none"  # train.distribute
    task_type: str = "worker"
    task_index: int = 0
    workers: int = 1  # machines taking part (chief included)
    has_chief: bool = False  # the cluster names a chief task (else worker 0 is the chief)

    @property
    def is_chief(self) -> bool:
        """The chief (task type chief, or worker 0 when there is none) writes the run directory."""
        return self.kind != "multi_worker" or self.task_type == "chief" or (
            self.task_type == "worker" and self.task_index == 0 and not self.has_chief)


def read_role(kind: str, environ=os.environ) -> Role:
    """The role this process plays for train.distribute=kind; refuses a missing or malformed TF_CONFIG."""
    if kind != "multi_worker":
        return Role(kind)
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("train.distribute=multi_worker needs the TF_CONFIG environment variable on every "
                          f"machine, e.g. {TF_CONFIG_EXAMPLE} (or use --set train.distribute=none)")
    try:
        tf_config = json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e}); it should look like {TF_CONFIG_EXAMPLE}") from None
    try:
        cluster, task = tf_config["cluster"], tf_config["task"]
        task_type, task_index = task["type"], task["index"]
        if not isinstance(cluster, dict) or not all(isinstance(v, list) and v for v in cluster.values()):
            raise ValueError("cluster must map each task type to a list of host:port addresses")
        if not isinstance(task_index, int) or isinstance(task_index, bool):
            raise ValueError("task.index must be an integer")
        if task_type not in cluster or not 0 <= task_index < len(cluster[task_type]):
            raise ValueError(f"task {task_type} {task_index} is not in the cluster")
        if not set(cluster) <= {"chief", "worker"}:
            raise ValueError("cluster may only have chief and worker task types")
    except (ValueError, KeyError, TypeError) as e:
        why = f"no {shown(e.args[0])} key" if isinstance(e, KeyError) else str(e)[:200]
        raise ConfigError(f"TF_CONFIG is malformed ({why}); it should look like {TF_CONFIG_EXAMPLE}") from None
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    return Role("multi_worker", task_type, task_index, workers, has_chief="chief" in cluster)


def make_strategy(role: Role):
    """The tf.distribute strategy for the role, or None for train.distribute=none.

    Created before any other TensorFlow work: MultiWorkerMirroredStrategy configures collective ops at start-up.
    """
    if role.kind == "none":
        return None
    import tensorflow as tf

    if role.kind == "mirrored":
        return tf.distribute.MirroredStrategy()

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """Keras 3's fit() under this strategy (keras-team/keras#20585) reduces a tuple batch at once, and
        each scalar log along axis 0, which this strategy refuses; reduce them element by element instead."""

        def reduce(self, reduce_op, value, axis=None):
            if isinstance(value, (tuple, list, dict)):
                return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
            if axis is not None and self.experimental_local_results(value)[0].shape.rank == 0:
                axis = None  # a scalar (a loss or metric) is reduced across the replicas only
            return super().reduce(reduce_op, value, axis)

    return MultiWorkerStrategy()  # reads TF_CONFIG


def strategy_scope(strategy):
    """Where the model is built and fitted, so its variables are mirrored and its steps run on every replica."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def worker_run_dir(role: Role, run_dir: Path) -> Path:
    """Where this worker writes: the run directory on the chief, a scratch folder of its own elsewhere.

    Every worker runs the same callbacks (saving reads synchronised variables, a collective step), but
    only the chief's files are kept. The scratch folder is stable, so a run resumed on the same machines
    finds each worker's state.
    """
    if role.is_chief:
        return run_dir
    key = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"lstm-textgen-{role.task_type}{role.task_index}-{key}"


def shard_by_data(dataset):
    """Each worker takes its share of every batch (the pipeline reads no files, so shard by element)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
