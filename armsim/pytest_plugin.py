"""pytest fixtures shipped with armsim (registered through the ``pytest11`` entry point).

``armsim_server`` (session): one running ArmSim with latency scale 0.001 and throttling off.
``armsim`` (function): the same server, reset before the test — the default for tests.
``compute`` / ``network``: SDK clients pointed at it (``polling_interval=0``, ``retry_total=0``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from armsim.server import ArmSim
from armsim.state import Config


@pytest.fixture(scope="session")
def armsim_server() -> Iterator[ArmSim]:
    with ArmSim(latency_scale=0.001, throttling=False) as sim:
        yield sim


@pytest.fixture
def armsim(armsim_server: ArmSim) -> ArmSim:
    # A fresh Config too: a test that tuned latencies, buckets, page size or retry hints must not leak them.
    armsim_server.world.config = Config(latency_scale=0.001, throttling=False)
    armsim_server.reset()
    return armsim_server


@pytest.fixture
def compute(armsim: ArmSim) -> Any:
    return armsim.compute_client(retry_total=0)


@pytest.fixture
def network(armsim: ArmSim) -> Any:
    return armsim.network_client(retry_total=0)
