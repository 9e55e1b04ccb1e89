"""Fixtures for the armsim suite: the plugin's ``armsim`` server (reset per test) wrapped in an ``Env``."""

from __future__ import annotations

import pytest
from armsim_env import Env

from armsim import ArmSim


@pytest.fixture
def arm(armsim: ArmSim) -> ArmSim:
    return armsim


@pytest.fixture
def env(arm: ArmSim) -> Env:
    return Env(arm)
