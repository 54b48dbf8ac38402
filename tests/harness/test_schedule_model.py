"""The cluster cost model (harness/schedule_model.py): Ray's schedule of a grid's tasks, replayed."""

from __future__ import annotations

import pytest

from recsec.harness.schedule_model import Node, Task, calibrate_overhead, predict


def grid_tasks(train=10.0, attack=3.0, grade=1.0, targets=2, cells_per_target=2, gpus=0.0) -> list[Task]:
    """Targets first, then each cell's attack and grade, as the driver submits them."""
    tasks = [Task(f"target {t}", train, gpus=gpus) for t in range(targets)]
    for t in range(targets):
        for c in range(cells_per_target):
            tasks += [Task(f"attack {t}.{c}", attack, gpus=gpus, after=(f"target {t}",)),
                      Task(f"grade {t}.{c}", grade, gpus=gpus, after=(f"attack {t}.{c}",))]
    return tasks


def test_one_cpu_runs_every_task_one_after_another():
    tasks = grid_tasks()
    schedule = predict(tasks, [Node(1)], overhead=0.5, fixed=4.0)
    assert schedule.wall_seconds == pytest.approx(4.0 + sum(t.seconds + 0.5 for t in tasks))


def test_cells_start_as_their_target_lands_not_after_every_target():
    # Two CPUs: both targets train at once (0-10 s); then four cells on two CPUs: 10-14, 14-18.
    schedule = predict(grid_tasks(), [Node(2)])
    assert schedule.started["attack 0.0"] == 10.0 and schedule.wall_seconds == 18.0
    # One target slower: its cells wait for it, the other's run meanwhile.
    tasks = grid_tasks()
    tasks[1] = Task("target 1", 20.0)
    schedule = predict(tasks, [Node(2)])
    assert schedule.started["attack 0.0"] == 10.0 and schedule.started["attack 1.0"] == 20.0
    # target 0's cells on the free CPU, 10-18; target 1's two side by side, 20-24
    assert schedule.started["grade 0.1"] == 17.0 and schedule.wall_seconds == 24.0


def test_gpu_fractions_share_a_gpu_and_whole_nodes_spread():
    tasks = grid_tasks(gpus=0.5, cells_per_target=1)
    # One node, 4 CPUs, 1 GPU: two half-GPU tasks at a time: targets 0-10, cells 10-14.
    assert predict(tasks, [Node(4, 1.0)]).wall_seconds == 14.0
    # With a quarter of a GPU each, the same node runs all four cells' attacks at once.
    assert predict(grid_tasks(gpus=0.25, cells_per_target=2), [Node(4, 1.0)]).wall_seconds == 14.0
    # Two 1-CPU nodes: each takes a target.
    schedule = predict(grid_tasks(), [Node(1), Node(1)])
    assert {schedule.placed["target 0"], schedule.placed["target 1"]} == {0, 1}


def test_tasks_no_node_can_run_or_that_wait_on_nothing_known_are_refused():
    with pytest.raises(ValueError, match="asks for 1 CPUs and 1 GPUs: no node has them"):
        predict([Task("t", 1.0, gpus=1.0)], [Node(8)])
    with pytest.raises(ValueError, match="waits on unknown tasks"):
        predict([Task("a", 1.0, after=("b",))], [Node(1)])


def test_the_overhead_fitted_to_a_measured_run_is_the_one_that_made_it():
    tasks = grid_tasks()
    measured = predict(tasks, [Node(2)], overhead=0.7, fixed=3.0).wall_seconds
    assert calibrate_overhead(tasks, [Node(2)], measured, fixed=3.0) == pytest.approx(0.7, abs=1e-6)
    assert calibrate_overhead(tasks, [Node(2)], 1.0, fixed=3.0) == 0.0  # the tasks alone take longer
