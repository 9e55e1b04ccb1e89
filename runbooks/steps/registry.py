"""The step library's registry: one planner per catalogue name (``runbooks.steps.catalog``).

A planner reads the plan context (observation, earlier decisions) and returns a ``PlannedStep``: the
calls it will make, or why it has nothing to do. Playbooks choose and order the steps; no remediation
sequence is written in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runbooks.steps.catalog import CATALOG

Planner = Callable[[Any, Any], Any]
_PLANNERS: dict[str, Planner] = {}


def planner(name: str) -> Callable[[Planner], Planner]:
    """Register the planner of catalogue step ``name``."""
    if name not in CATALOG:
        raise KeyError(f"step '{name}' is not in the catalogue")

    def register(fn: Planner) -> Planner:
        _PLANNERS[name] = fn
        return fn

    return register


def planners() -> dict[str, Planner]:
    """Every step's planner (importing the step modules registers them)."""
    from runbooks.steps import backup, recreate, verify  # noqa: F401

    missing = set(CATALOG) - set(_PLANNERS)
    if missing:
        raise RuntimeError(f"catalogue steps without a planner: {sorted(missing)}")
    return _PLANNERS
