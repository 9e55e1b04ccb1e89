"""Fixtures for the remediation suite: armsim's ``armsim`` fixture (fresh world per test) plus a private
RUNBOOKS_HOME and the admin secret in the environment, in every test."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.register_assert_rewrite("remediation_helpers")

from remediation_helpers import PASSWORD, Rig  # noqa: E402

from armsim import ArmSim  # noqa: E402


@pytest.fixture
def rig(armsim: ArmSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    home = tmp_path / "home"
    monkeypatch.setenv("RUNBOOKS_HOME", str(home))
    monkeypatch.setenv("RUNBOOKS_ADMIN_PASSWORD", PASSWORD)
    return Rig(armsim, home)
