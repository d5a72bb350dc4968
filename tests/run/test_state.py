"""The training state in parts, one per owner: saved as one flat object of every part's fields (as state.json
always was, so runs of 0.1 read back), read back with every field's type checked, and rewound part by part to an
epoch checkpoint."""
import json
import shutil

import pytest

from lstm_textgen.errors import CheckpointError
from lstm_textgen.run.state import PARTS, Budget, Progress, Schedule, TrainingState, recorded_logs

from conftest import REPO


def test_the_parts_own_disjoint_fields_and_save_as_one_flat_object(tmp_path):
    fields = [f for part in PARTS.values() for f in part.__dataclass_fields__]
    assert len(fields) == len(set(fields)) == 22
    (tmp_path / "checkpoints").mkdir()
    state = TrainingState(Progress(epoch=2, global_step=40), budget=Budget(spent_seconds=12.5),
                          schedule=Schedule(lr_scales=[1.0, 0.5]))
    state.logs.logs.append("tensorboard/train/events.out.tfevents.1.host.1.0.v2")
    state.save(tmp_path)
    saved = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert set(saved) == set(fields) and saved["epoch"] == 2 and saved["spent_seconds"] == 12.5
    assert TrainingState.load(tmp_path) == state
    assert recorded_logs(tmp_path) == ["tensorboard/train/events.out.tfevents.1.host.1.0.v2"]


def test_a_state_of_0_1_reads_into_the_parts(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(REPO / "tests" / "fixtures" / "run_v0_1_word", run)
    state = TrainingState.load(run)
    assert state.progress.epoch == 1 and state.saved.weights == "state_000000040.weights.h5"
    assert state.logs.logs == [] and state.streams.carried == []


@pytest.mark.parametrize("change, problem", [({"epoch": "two"}, "epoch is str"), ({"stopped_early": 1}, "stopped_early is int"),
                                             ({"colour": "red"}, "its fields are not a training state's")])
def test_a_field_of_the_wrong_type_or_name_is_damage(tmp_path, change, problem):
    (tmp_path / "checkpoints").mkdir()
    TrainingState().save(tmp_path)
    path = tmp_path / "checkpoints" / "state.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(CheckpointError, match=problem):
        TrainingState.load(tmp_path)
    assert recorded_logs(tmp_path) == []  # a damaged state records no logs to remove


def test_rewinding_to_an_epoch_puts_every_part_where_that_epoch_ended():
    rows = [{"epoch": 1, "val_loss": 5.0, "seconds": 10.0, "learning_rate": 1e-3},
            {"epoch": 2, "val_loss": 4.0, "seconds": 11.0, "learning_rate": 5e-4},
            {"epoch": 3, "val_loss": 4.5, "seconds": 12.0, "learning_rate": 2.5e-4}]
    state = TrainingState(Progress(epoch=3, step=7, global_step=37, rows=rows, epoch_ends=[[10, 1, 1.0], [20, 2, 2.0],
                                                                                           [30, 3, 3.0]]))
    state.saved.weights, state.streams.carried, state.patience.wait = "state_000000037.weights.h5", [[1.0]], 1
    state.rewind(2)
    assert (state.progress.epoch, state.progress.step, state.progress.global_step) == (2, 0, 20)
    assert (state.best.best_loss, state.best.best_epoch) == (4.0, 2) and state.patience.wait == 0
    assert state.schedule.learning_rate == 5e-4 and state.schedule.lr_best == 4.0
    assert state.budget.spent_seconds == 21.0 and state.saved.weights is None and state.streams.carried == []
