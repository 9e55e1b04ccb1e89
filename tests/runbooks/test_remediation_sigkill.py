"""SIGKILL at chosen writes: the real CLI (``invoke remediate --yes``) in a subprocess, armsim in this process.
A ``delay`` fault holds the chosen request after it took effect (its answer never reaches the client), the
process is killed there, and a plain re-run of the same command resumes from the journal and converges."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from remediation_helpers import INVOKE, REPO, Rig, assert_converged, before, kill_when, seed

# (vm, method, path regex, nth): where the process dies.
KILL_POINTS: dict[str, tuple[str, str, str, int]] = {
    "during-snapshots": ("rg-demo/app-01", "PUT", r"/snapshots/", 2),
    "delete-accepted": ("rg-demo/app-01", "DELETE", r"/virtualMachines/app-01$", 1),
    "during-disk-rebuild": ("rg-demo/api-01", "PUT", r"/disks/api-01_OsDisk$", 1),
    "during-nic-rebuild": ("rg-demo/app-01", "PUT", r"/networkInterfaces/app-01-nic$", 1),
    "during-vm-create": ("rg-demo/app-01", "PUT", r"/virtualMachines/app-01$", 1),
    "during-vm-create-attach": ("rg-demo/api-01", "PUT", r"/virtualMachines/api-01$", 1),
    "during-extension": ("rg-demo/app-01", "PUT", r"/extensions/bootstrap$", 1),
}


def _remediate_args(vm: str) -> list[str]:
    scenario = "from-image" if vm.endswith("app-01") else "from-os-disk"
    return ["remediate", "--vm", vm, "--scenario", scenario, "--yes", "--verify-timeout", "30"]


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_rerun_converges(rig: Rig, point: str) -> None:
    vm, method, path, nth = KILL_POINTS[point]
    scenario = "from-image" if vm.endswith("app-01") else "from-os-disk"
    seed(rig, vm)
    b = before(rig, vm)
    rule: dict[str, Any] = rig.arm.add_fault(method=method, path=path, nth=nth, action="delay", seconds=60)
    proc = subprocess.Popen([INVOKE, *_remediate_args(vm)], cwd=REPO, env=rig.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when(proc, lambda: rule["fired"] >= 1, f"the write at {point}")
    rig.arm.world.faults.clear()

    again = rig.invoke(*_remediate_args(vm))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "An unfinished run" in again.stdout and "resuming" in again.stdout
    assert "Traceback" not in again.stderr
    assert_converged(rig, b, scenario)
    # and it is finished: nothing pending, a further run refuses (the VM is healthy) without writing
    mark = rig.arm.last_request
    third = rig.invoke(*_remediate_args(vm))
    assert third.returncode != 0 and "shows nothing a playbook covers" in third.stderr
    assert rig.arm.writes(mark) == []
