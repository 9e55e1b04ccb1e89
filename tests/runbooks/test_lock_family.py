"""The resource-locked family (LOCK) end to end, real SDK over real HTTPS against armsim's ``resource-locked``
world: lk-01's start was refused by a ReadOnly lock on its resource group, lk-02's deallocate by a ReadOnly lock on
the VM; lk-03 (CanNotDelete lock, nothing refused) and lk-04 (refused once, lock gone, restarted since) are
distractors. By default the playbook only reports; ``--scenario lift-lock-and-retry`` lifts the lock, retries the
power action and re-creates the lock identical, even when the retry fails or the run is killed meanwhile."""

from __future__ import annotations

from typing import Any

from remediation_helpers import Rig

from runbooks.observe import VmRef
from runbooks.remediate import run_diagnosis

PLAYBOOK = "resource-locked"
LK01, LK02 = "rg-locked/lk-01", "rg-lockvm/lk-02"
DISTRACTORS = ("rg-lockvm/lk-03", "rg-lockvm/lk-04")


def seed(rig: Rig) -> dict[str, Any]:
    return rig.arm.seed(PLAYBOOK)


def lock_definitions(rig: Rig) -> dict[str, dict[str, Any]]:
    """Every lock of the subscription, by lower id, as ARM returns it (name, level, notes, owners)."""
    locks = rig.arm.lock_client().management_locks.list_at_subscription_level()
    return {str(lk.id).lower(): lk.serialize(keep_readonly=True) for lk in locks}


def power(rig: Rig, ref: str) -> str | None:
    rg, name = ref.split("/")
    view = rig.arm.compute_client().virtual_machines.instance_view(rg, name)
    codes = [s.code for s in view.statuses or [] if str(s.code).startswith("PowerState/")]
    return codes[0].split("/", 1)[1] if codes else None


def test_diagnose_names_the_lock_its_scope_owners_and_notes_with_zero_writes(rig: Rig) -> None:
    seeded = seed(rig)
    az = rig.az()
    mark = rig.arm.last_request

    diag = run_diagnosis(az, VmRef.parse(LK01))
    assert diag.playbook is not None and diag.playbook.id == PLAYBOOK and diag.matched == [PLAYBOOK]
    detail = diag.signals["still-locked"].detail
    print(detail)
    assert diag.signals["still-locked"].holds
    assert "lock change-freeze (ReadOnly) on resource group rg-locked" in detail
    assert "7c1f0e0a-4c57-4d4e-9a57-0e1b7f3a0001" in detail and "Quarter-end change freeze" in detail
    assert "Start Virtual Machine" in detail or "start/action" in detail
    assert rig.arm.writes(mark) == []
    assert seeded["locks"]["lk-01"].lower() in lock_definitions(rig)


def test_scratch_lift(rig: Rig) -> None:
    from runbooks.remediate import remediate_vm
    seeded = seed(rig)
    before = lock_definitions(rig)
    mark = rig.arm.last_request
    result = remediate_vm(rig.az(), VmRef.parse(LK01), rig.hooks(), scenario="lift-lock-and-retry", yes=True)
    print("\n".join(rig.progress))
    print([(w["method"], w["path"], w["status"]) for w in rig.arm.writes(mark)])
    assert lock_definitions(rig) == before
    assert power(rig, LK01) == "running"
    assert seeded
    assert result
