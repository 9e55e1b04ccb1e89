"""Management locks as the LOCK family relies on them, through the real SDK clients: which operations each level
refuses (ReadOnly: every write, POST actions included; CanNotDelete: deletes only) at every scope, the refusal in
the activity log, and a lock's notes and owners kept and returned."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from armsim_env import Env
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.mgmt.resource.locks.models import ManagementLockObject, ManagementLockOwner

from armsim import ArmSim

OWNER = "0f3c2b1a-0000-4000-8000-0000000000aa"


def _since() -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refused_write(env: Env, call: object, resource_id: str, scopes: list[str]) -> None:
    with pytest.raises(ResourceExistsError) as e:
        call()  # type: ignore[operator]
    assert e.value.status_code == 409 and e.value.error.code == "ScopeLocked"
    locked = ",".join(f"'{s}'" for s in scopes)  # several scopes: joined by a comma (not verified against Azure)
    assert e.value.error.message == (
        f"The scope '{resource_id}' cannot perform write operation because following scope(s) are locked: "
        f"{locked}. Please remove the lock and try again.")


def test_a_read_only_lock_at_the_subscription_refuses_power_actions_of_every_vm(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    locks = arm.lock_client()
    locks.management_locks.create_or_update_at_subscription_level("sub-freeze", {"level": "ReadOnly"})
    sub_scope = f"/subscriptions/{env.sub}"
    vm_id = env.vm_id("rg", "vm1")
    for action in ("begin_deallocate", "begin_restart", "begin_power_off"):
        _refused_write(env, lambda a=action: getattr(env.compute.virtual_machines, a)("rg", "vm1"), vm_id,
                       [sub_scope])
    locks.management_locks.delete_at_subscription_level("sub-freeze")
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    locks.management_locks.create_or_update_at_subscription_level("sub-freeze", {"level": "ReadOnly"})
    _refused_write(env, lambda: env.compute.virtual_machines.begin_start("rg", "vm1"), vm_id, [sub_scope])


def test_a_can_not_delete_lock_lets_power_actions_through(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    arm.lock_client().management_locks.create_or_update_by_scope(env.vm_id("rg", "vm1"), "keep",
                                                                 {"level": "CanNotDelete"})
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    env.compute.virtual_machines.begin_restart("rg", "vm1").result()
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_delete("rg", "vm1")
    assert e.value.error.code == "ScopeLocked" and "cannot perform delete operation" in e.value.error.message


def test_locks_at_two_scopes_are_both_named(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    locks = arm.lock_client().management_locks
    locks.create_or_update_at_resource_group_level("rg", "group", {"level": "ReadOnly"})
    locks.create_or_update_by_scope(env.vm_id("rg", "vm1"), "vm", {"level": "ReadOnly"})
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_restart("rg", "vm1")
    assert f"'{env.rg_id('rg')}'" in e.value.error.message and f"'{env.vm_id('rg', 'vm1')}'" in e.value.error.message


def test_the_refusal_is_a_failed_scope_locked_operation_in_the_activity_log(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    vm_id = env.vm_id("rg", "vm1")
    arm.lock_client().management_locks.create_or_update_at_resource_group_level("rg", "ro", {"level": "ReadOnly"})
    with pytest.raises(ResourceExistsError):
        env.compute.virtual_machines.begin_restart("rg", "vm1")
    events = list(arm.monitor_client().activity_logs.list(
        filter=f"eventTimestamp ge '{_since()}' and resourceUri eq '{vm_id}'"))
    restart = [e for e in events if e.operation_name.value == "Microsoft.Compute/virtualMachines/restart/action"]
    assert sorted(e.status.value for e in restart) == ["Failed", "Started"]
    failed = next(e for e in restart if e.status.value == "Failed")
    assert failed.level == "Error" and failed.properties["statusCode"] == "Conflict"
    error = json.loads(failed.properties["statusMessage"])["error"]
    assert error["code"] == "ScopeLocked" and f"locked: '{env.rg_id('rg')}'" in error["message"]


def test_notes_and_owners_are_kept_and_returned(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    locks = arm.lock_client().management_locks
    vm_id = env.vm_id("rg", "vm1")
    made = locks.create_or_update_by_scope(vm_id, "audit", ManagementLockObject(
        level="ReadOnly", notes="Held for audit", owners=[ManagementLockOwner(application_id=OWNER)]))
    assert made.notes == "Held for audit" and [o.application_id for o in made.owners] == [OWNER]
    got = locks.get_by_scope(vm_id, "audit")
    assert got.serialize(keep_readonly=True) == {
        "id": f"{vm_id}/providers/Microsoft.Authorization/locks/audit", "name": "audit",
        "type": "Microsoft.Authorization/locks",
        "properties": {"level": "ReadOnly", "notes": "Held for audit", "owners": [{"applicationId": OWNER}]}}
    listed = [lk.serialize(keep_readonly=True) for lk in locks.list_at_resource_group_level("rg")]
    assert listed == [got.serialize(keep_readonly=True)]
    locks.delete_by_scope(vm_id, "audit")
    with pytest.raises(ResourceNotFoundError):
        locks.get_by_scope(vm_id, "audit")
