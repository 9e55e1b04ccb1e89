"""Every sizing playbook through each face, on its armsim scenario: the named fix as a dry run (zero writes), in
confirm mode (the plan approved, the destructive step asked), and as an Automation job that first only advises;
and a resize undone by rollback (the VM back at its old size)."""

from __future__ import annotations

import pytest
from remediation_helpers import Rig

from runbooks.automation.entry import remediate_main
from runbooks.observe import VmRef
from runbooks.remediate import remediate_vm, rollback_run

# (seed, rg, vm, playbook named or None, the fix's scenario, the size it ends at or None: the advice's top)
FIXES = [
    ("size-not-in-cluster", "rg-resize", "api-01", None, "resize-in-place", "Standard_D4s_v5"),
    ("sku-not-available", "rg-sku", "db-01", None, "resize-to-fitting-size", None),
    ("quota-exceeded", "rg-quota", "batch-02", None, "resize-within-quota", "Standard_E8s_v5"),
    ("iops-limit", "rg-iops", "io-01", "iops-limit", "resize-in-place", None),
    ("iops-limit", "rg-iops", "io-01", "iops-limit", "deallocate-resize-start", None),
]


def _size(rig: Rig, rg: str, name: str) -> str:
    return str(rig.arm.compute_client(retry_total=0).virtual_machines.get(rg, name).hardware_profile.vm_size)


@pytest.mark.parametrize(("seed", "rg", "vm", "playbook", "scenario", "size"), FIXES,
                         ids=[f"{f[0]}-{f[4]}" for f in FIXES])
def test_a_sizing_fix_through_dry_run_confirm_mode_and_an_automation_job(
        rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seed: str, rg: str, vm: str,
        playbook: str | None, scenario: str, size: str | None) -> None:
    for key, value in rig.arm.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RUNBOOKS_POLL_INTERVAL_S", "0.1")
    rig.arm.seed(seed)
    old = _size(rig, rg, vm)
    mark = rig.arm.last_request
    named = ["--playbook", playbook] if playbook else []
    dry = rig.invoke("remediate", "--vm", f"{rg}/{vm}", *named, "--scenario", scenario, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Dry run: nothing was changed (0 writes)" in dry.stdout
    job = '{"vm": "' + f"{rg}/{vm}" + '"' + (f', "playbook": "{playbook}"' if playbook else "") + \
        ', "apply": true, "allow_local_store": true}'
    assert remediate_main([job]) == 0
    out = capsys.readouterr().out
    assert "It advises; nothing was changed" in out and f"--scenario {scenario}" in out, out
    assert rig.arm.writes(mark) == []
    asked: list[str] = []
    hooks = rig.hooks()
    answer = hooks.confirm
    hooks.confirm = lambda q: asked.append(q) or answer(q)
    result = remediate_vm(rig.az(), VmRef(rg, vm), hooks, playbook=playbook, scenario=scenario)
    assert result.outcome is not None
    assert asked and asked[0].startswith("Apply this plan")  # approved once, before the first write
    destructive = [i for i, step in enumerate(result.plan.steps) if step.destructive]
    assert [q.split(":", 1)[0] for q in asked[1:]] == [f"Step {i + 1} is destructive" for i in destructive]
    assert bool(destructive) == (scenario == "deallocate-resize-start")  # the deallocate is asked about, alone
    new = _size(rig, rg, vm)
    assert new != old and (size is None or new == size)
    back, outcome = rollback_run(rig.az(), result.plan.run_id, rig.hooks(), yes=True)
    assert back.plan is not None and outcome is not None
    assert _size(rig, rg, vm) == old  # rollback returns the VM to its old size
