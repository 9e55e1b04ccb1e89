"""Fixtures for the remediation suite: armsim's ``armsim`` fixture (fresh world per test) plus a private
RUNBOOKS_HOME and the admin secret in the environment, in every test; ``azurite`` (one Azure Storage emulator
for the session, see store_helpers.py) for the blob run store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("remediation_helpers", "store_helpers")

from automation_helpers import AA_RG, ACCOUNT, FileHost, python310  # noqa: E402
from remediation_helpers import PASSWORD, Rig  # noqa: E402
from store_helpers import Azurite, azurite_binary  # noqa: E402

from armsim import ArmSim  # noqa: E402
from runbooks.automation.deploy import ScheduleSpec, Settings, deploy  # noqa: E402
from runbooks.automation.package import WheelSet  # noqa: E402


@pytest.fixture
def rig(armsim: ArmSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    home = tmp_path / "home"
    monkeypatch.setenv("RUNBOOKS_HOME", str(home))
    monkeypatch.setenv("RUNBOOKS_ADMIN_PASSWORD", PASSWORD)
    for name in ("RUNBOOKS_STORE_URL", "RUNBOOKS_STORE_CONTAINER", "RUNBOOKS_STORE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)  # the local store, unless a test names another
    return Rig(armsim, home)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service for the whole session (skips, saying why, when Node.js is missing)."""
    server = Azurite(azurite_binary(), tmp_path_factory.mktemp("azurite"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def wheel_set(tmp_path_factory: pytest.TempPathFactory) -> WheelSet:
    """The Automation wheel set, built once per session with pip (skips when the package index is unreachable)."""
    from runbooks.automation.package import build
    from runbooks.errors import UsageError

    try:
        return build(tmp_path_factory.mktemp("wheelset"), progress=lambda line: None)
    except UsageError as e:
        pytest.skip(f"cannot build the Automation wheel set here (package index unreachable?): {e}")


@pytest.fixture
def host(wheel_set: WheelSet) -> Iterator[FileHost]:
    """The wheel folder served over HTTP, as a blob container would serve it to the Automation service."""
    server = FileHost(wheel_set.directory)
    yield server
    server.close()


@pytest.fixture
def deployed(rig: Rig, wheel_set: WheelSet, host: FileHost) -> Any:
    """Both runbooks deployed to an Automation account on armsim (skips without a CPython 3.10)."""
    if python310() is None:
        pytest.skip("no CPython 3.10 here for armsim's Automation sandbox")
    rig.arm.world.default.ensure_rg(AA_RG, "eastus")
    client = rig.az().automation()
    settings = Settings(location="eastus", wheels_url=host.url, schedule=ScheduleSpec.parse("day@02:00"),
                        sweep_parameters={"max_vms": 5}, imports_per_window=(100, 1.0))
    report = deploy(client, AA_RG, ACCOUNT, wheel_set, settings, progress=lambda line: None)
    return client, settings, report
