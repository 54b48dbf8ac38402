"""Executors: where a grid's tasks run (see base.Executor). Ray is imported only when chosen."""

from __future__ import annotations

from recsec.harness.executors.base import Executor, TaskFailed

EXECUTORS = ("ray", "local")


def make_executor(name: str, *, address: str | None = None, num_cpus: int | None = None,
                  isolate_oracle: bool = True) -> Executor:
    if name == "ray":
        from recsec.harness.executors.ray_executor import RayExecutor
        return RayExecutor(address, num_cpus, isolate_oracle)
    if name == "local":
        from recsec.harness.executors.local import LocalExecutor
        return LocalExecutor()
    raise ValueError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "TaskFailed", "make_executor"]
