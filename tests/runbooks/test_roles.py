"""Least privilege, proven on armsim with RBAC on: every flow passes under the shipped custom role, and
removing any single action from it makes some flow fail with an authorization error (nothing in a role is
there by accident). The remediator role also may not be narrower than what recovery after a failure needs."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
from remediation_helpers import Rig

from armsim.app import build_router
from runbooks.apply import Hooks
from runbooks.azure import Azure, Connection
from runbooks.errors import RunbookError
from runbooks.observe import VmRef
from runbooks.remediate import plan_remediation, remediate, resume, rollback_run, run_diagnosis
from runbooks.sweep import sweep

PRINCIPAL = "runbook-identity"
# ARM's refusals, and the preflight's (the caller's permissions read before the first write)
DENIED = ("AuthorizationFailed", "LinkedAuthorizationFailed", "ForbiddenByRbac", "the caller lacks what the plan needs")


def role(name: str) -> dict[str, Any]:
    return json.loads(resources.files("runbooks.automation").joinpath(f"roles/{name}.json").read_text())


def _poll_actions() -> set[str]:
    """Actions of operation-status routes: ARM checks no role when an LRO is polled, and neither does armsim,
    so taking them out of a role cannot be seen to fail here (they stay in the role for real Azure)."""
    return {r.action for r in build_router().routes if r.lro_poll}


def grant(rig: Rig, definition: dict[str, Any], without: str | None = None) -> None:
    perms = {"actions": [a for a in definition["Actions"] if a != without], "notActions": definition["NotActions"],
             "dataActions": [a for a in definition["DataActions"] if a != without],
             "notDataActions": definition["NotDataActions"]}
    with rig.arm.world.lock:
        rig.arm.world.rbac = {"roleDefinitions": [{"id": "under-test", "roleName": definition["Name"],
                                                   "permissions": [perms]}],
                              "roleAssignments": [{"principalId": PRINCIPAL, "roleDefinitionId": "under-test",
                                                   "scope": f"/subscriptions/{rig.sub}"}]}
        rig.arm.world.config.rbac = True


def _az(rig: Rig) -> Azure:
    return Azure(Connection(rig.sub, rig.arm.endpoint, rig.arm.ca_bundle, polling_interval=0.1),
                 credential=rig.arm.credential(PRINCIPAL))


def _hooks() -> Hooks:
    return Hooks(confirm=lambda q: True, progress=lambda line: None)


def _keeps_addresses(plan: Any) -> None:
    """The NIC rebuild knows its old address is free (the subnet read): a refused read only degrades the plan (who
    holds the address is unknown), so the flow checks what that read buys."""
    notes = [n for s in plan.steps if s.name == "rebuild-deleted-nics" for n in s.notes]
    assert notes and all(": keeps " in n for n in notes), notes


def from_image(rig: Rig) -> None:
    rig.arm.seed("generalized-after-capture")
    secret = rig.arm.set_secret("kv-ops", "vm-admin", "Adm1n-Passw0rd-For-Test!")
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-image", admin_secret=secret)
    _keeps_addresses(plan)
    remediate(az, plan, _hooks(), yes=True)


def from_os_disk(rig: Rig) -> None:
    rig.arm.seed("generalized-without-sysprep")
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/api-01"), "from-os-disk")
    remediate(az, plan, _hooks(), yes=True)


def with_links(rig: Rig) -> None:
    """A VM whose NIC is in an NSG, an application security group and a load-balancer backend pool, with a
    user-assigned identity: the NIC rebuild and the VM create write every linked reference the role must join."""
    rig.arm.seed("generalized-with-links")
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/db-01"), "from-os-disk")
    remediate(az, plan, _hooks(), yes=True)


def rollback_rebuild(rig: Rig) -> None:
    """A way back under the same role: the rebuilt VM's disks restored from the run's snapshots (the VM is
    deallocated for the swap and started again)."""
    rig.arm.seed("generalized-without-sysprep")
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/api-01"), "from-os-disk")
    remediate(az, plan, _hooks(), yes=True)
    rollback, outcome = rollback_run(az, plan.run_id, _hooks(), yes=True)
    assert rollback.plan is not None and outcome is not None


def redeploy(rig: Rig) -> None:
    """The redeploy family: a VM whose OS provisioning timed out on a faulty host is moved to a new one."""
    rig.arm.seed("redeploy-vm")
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-redeploy/web-01"), "redeploy")
    remediate(az, plan, _hooks(), yes=True)


def recovery(rig: Rig) -> None:
    """A create that fails late leaves the VM stopped; the re-run must start it."""
    rig.arm.seed("generalized-without-sysprep")
    rig.arm.add_fault(method="PUT", path=r"/virtualMachines/api-01$", action="async-failed", times=1)
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/api-01"), "from-os-disk")
    with pytest.raises(RunbookError, match="InternalExecutionError"):
        remediate(az, plan, _hooks(), yes=True)
    resume(az, VmRef.parse("rg-demo/api-01"), _hooks(), yes=True)


def report_sweep(rig: Rig) -> None:
    rig.arm.seed("generalized-without-sysprep")
    report = sweep(_az(rig))
    assert len(report.items) == 1


def diagnose_and_dry_run(rig: Rig) -> None:
    rig.arm.seed("generalized-after-capture")
    az = _az(rig)
    assert run_diagnosis(az, VmRef.parse("rg-demo/app-01")).playbook is not None
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-image",
                               admin_secret="env:RUNBOOKS_ADMIN_PASSWORD")
    _keeps_addresses(plan)


def resize_in_place(rig: Rig) -> None:
    """A sizing fix: the resize target is checked against the set, the cluster's sizes, the SKUs and quota."""
    rig.arm.seed("size-not-in-cluster")
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-resize/api-01"), "resize-in-place")
    remediate(az, plan, _hooks(), yes=True)


def diagnose_sizing(rig: Rig) -> None:
    """The advice of a sizing playbook reads the set, the VM's available sizes, the region's SKUs and usages."""
    rig.arm.seed("size-not-in-cluster")
    az = _az(rig)
    diag = run_diagnosis(az, VmRef.parse("rg-resize/api-01"))
    assert diag.advice is not None and diag.advice["data"]["fitting"]
    assert diag.signals["set-pinned"].holds


def bootdiag(rig: Rig) -> None:
    """The boot-diagnostics family: the subscription's storage accounts are read (generic resource list), then
    the VM is switched to managed boot diagnostics and started."""
    rig.arm.seed("bootdiag-storage")
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-bootdiag/diag-01"), "use-managed")
    remediate(az, plan, _hooks(), yes=True)


def diagnose_bootdiag(rig: Rig) -> None:
    rig.arm.seed("bootdiag-storage")
    diag = run_diagnosis(_az(rig), VmRef.parse("rg-bootdiag/diag-02"))
    assert diag.signals["boot-storage-premium"].holds


def accept_terms(rig: Rig) -> None:
    """The marketplace-terms fix: a refused create's image and plan terms read, the terms accepted."""
    rig.arm.seed("marketplace-terms")
    az = _az(rig)
    _, plan = plan_remediation(az, VmRef.parse("rg-market/fw-01"), "accept-terms")
    remediate(az, plan, _hooks(), yes=True)


def diagnose_marketplace(rig: Rig) -> None:
    """A refused create diagnosed: its activity log, the image it named and the legal terms of its plan."""
    rig.arm.seed("marketplace-terms")
    diag = run_diagnosis(_az(rig), VmRef.parse("rg-market/fw-01"))
    assert diag.signals["terms-not-accepted"].holds, diag.signals["terms-not-accepted"].detail


FLOWS: dict[str, list[Callable[[Rig], None]]] = {
    "remediator": [resize_in_place, from_os_disk, from_image, recovery, with_links, redeploy, rollback_rebuild,
                   bootdiag, accept_terms],
    "reader": [diagnose_sizing, report_sweep, diagnose_and_dry_run, diagnose_bootdiag, diagnose_marketplace],
}


def run_under(rig: Rig, definition: dict[str, Any], flow: Callable[[Rig], None], without: str | None = None
              ) -> str | None:
    """Run one flow in a fresh world under the role; the error text if it failed, else None."""
    rig.arm.reset()
    rig.arm.world.config.rbac = False  # seeding is not the runbook's doing
    rig.arm.world.config.latency_scale = 0.001
    rig.arm.world.config.throttling = False
    original = rig.arm.seed
    seeded: list[str] = []

    def seed_then_lock(name: str, **params: Any) -> dict[str, Any]:
        out = original(name, **params)
        seeded.append(name)
        grant(rig, definition, without)
        return out

    rig.arm.seed = seed_then_lock  # type: ignore[method-assign]
    try:
        flow(rig)
        return None
    except (RunbookError, AssertionError) as e:
        return str(e)
    finally:
        rig.arm.seed = original  # type: ignore[method-assign]
        rig.arm.world.config.rbac = False


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_every_flow_passes_under_the_role(rig: Rig, name: str) -> None:
    definition = role(name)
    for flow in FLOWS[name]:
        assert run_under(rig, definition, flow) is None, flow.__name__


@pytest.mark.parametrize(("name", "action"), [(n, a) for n in sorted(FLOWS)
                                               for a in role(n)["Actions"] + role(n)["DataActions"]])
def test_removing_any_action_breaks_a_flow(rig: Rig, name: str, action: str) -> None:
    if action in _poll_actions():
        pytest.skip(f"{action}: armsim, like ARM, checks no role on operation polls")
    definition = role(name)
    failures = []
    for flow in FLOWS[name]:
        error = run_under(rig, definition, flow, without=action)
        if error is not None:
            failures.append(error)
            break
    assert failures, f"every {name} flow passed without {action}: it is not needed"
    assert any(code in failures[0] for code in DENIED), failures[0]


# what the NIC rebuild and the VM create of ``with_links`` ask of the role → the reference it is asked on
_SHARED = "/resourceGroups/rg-shared/providers/"
LINKED_ACTIONS = {
    "Microsoft.Network/networkSecurityGroups/join/action":
        f"{_SHARED}Microsoft.Network/networkSecurityGroups/db-nsg",
    "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action":
        f"{_SHARED}Microsoft.Network/applicationSecurityGroups/db-asg",
    "Microsoft.Network/loadBalancers/backendAddressPools/join/action":
        f"{_SHARED}Microsoft.Network/loadBalancers/db-lb/backendAddressPools/db-pool",
    "Microsoft.Network/loadBalancers/inboundNatRules/join/action":
        f"{_SHARED}Microsoft.Network/loadBalancers/db-lb/inboundNatRules/db-ssh",
    "Microsoft.Network/applicationGateways/backendAddressPools/join/action":
        f"{_SHARED}Microsoft.Network/applicationGateways/db-agw/backendAddressPools/db-agw-pool",
    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action":
        f"{_SHARED}Microsoft.ManagedIdentity/userAssignedIdentities/db-identity",
}


def test_a_vm_with_linked_references_is_remediated_under_the_remediator_role(rig: Rig) -> None:
    assert run_under(rig, role("remediator"), with_links) is None
    rig.arm.world.config.rbac = False
    vm = rig.arm.compute_client(retry_total=0).virtual_machines.get("rg-demo", "db-01")
    nic = rig.arm.network_client(retry_total=0).network_interfaces.get("rg-demo", "db-01-nic")
    assert [k.lower() for k in vm.identity.user_assigned_identities] == [
        f"/subscriptions/{rig.sub}{_SHARED}Microsoft.ManagedIdentity/userAssignedIdentities/db-identity".lower()]
    assert nic.network_security_group.id.endswith("/networkSecurityGroups/db-nsg")
    config = nic.ip_configurations[0]
    assert [a.id.rsplit("/", 1)[-1] for a in config.application_security_groups] == ["db-asg"]
    assert [p.id.rsplit("/", 1)[-1] for p in config.load_balancer_backend_address_pools] == ["db-pool"]
    assert [r.id.rsplit("/", 1)[-1] for r in config.load_balancer_inbound_nat_rules] == ["db-ssh"]
    assert [p.id.rsplit("/", 1)[-1] for p in config.application_gateway_backend_address_pools] == ["db-agw-pool"]


@pytest.mark.parametrize("action", sorted(LINKED_ACTIONS))
def test_without_a_linked_action_the_plan_is_refused_before_anything_is_deleted(rig: Rig, action: str) -> None:
    """The testers' data-loss case: under a role without a join (or assign) action, the NIC rebuild (or the VM
    create) would be refused by ARM after the delete. The preflight reads the caller's permissions and refuses
    the plan first, naming the action and the reference; the VM is untouched."""
    assert action in role("remediator")["Actions"]
    since = rig.arm.last_request
    error = run_under(rig, role("remediator"), with_links, without=action)
    assert error is not None and "the caller lacks what the plan needs, so nothing was changed" in error, error
    checked = action.replace("/*/", "/")  # the role's wildcard grants the operation ARM checks
    assert checked in error, error
    assert LINKED_ACTIONS[action].rsplit("/", 1)[-1].lower() in error.lower(), error
    assert [w for w in rig.arm.writes(since) if w["principal"] == PRINCIPAL] == []


def test_the_reader_role_cannot_change_anything(rig: Rig) -> None:
    definition = role("reader")
    assert not any(a.endswith(("/write", "/delete", "/action")) for a in definition["Actions"])
    since = rig.arm.last_request
    error = run_under(rig, definition, from_os_disk)
    assert error is not None and "the caller lacks what the plan needs, so nothing was changed" in error
    assert [w for w in rig.arm.writes(since) if w["principal"] == PRINCIPAL and w["status"] < 300] == []


def test_roles_are_azure_custom_role_documents() -> None:
    for name in FLOWS:
        definition = role(name)
        assert definition["IsCustom"] is True
        assert set(definition) == {"Name", "IsCustom", "Description", "Actions", "NotActions", "DataActions",
                                   "NotDataActions", "AssignableScopes"}
        assert len(set(definition["Actions"])) == len(definition["Actions"])
