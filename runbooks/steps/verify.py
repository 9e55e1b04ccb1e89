"""Steps that check the result: the recreated VM must be provisioned, running, not generalized, its agent
Ready, with NICs and disks as before; and the fallout report lists what could not carry over."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError

from runbooks.azure import Azure, call_failed, get_resource
from runbooks.errors import VerifyFailed
from runbooks.observe import Observation, observe
from runbooks.plan import Plan, PlanContext, PlannedStep
from runbooks.steps.catalog import NoParams, VerifyParams
from runbooks.steps.registry import planner


@planner("verify-vm")
def verify_vm_step(ctx: PlanContext, params: VerifyParams) -> PlannedStep:
    return PlannedStep("verify-vm", "check: provisioning Succeeded, running, not generalized, VM agent Ready "
                       f"within {params.agent_ready_timeout_s:g}s, NICs and data disks as before", kind="verify")


@planner("report-fallout")
def report_fallout_step(ctx: PlanContext, params: NoParams) -> PlannedStep:
    return PlannedStep("report-fallout", "report what could not carry over (identity, protected settings, "
                       "addresses, kept snapshots)", kind="fallout")


def _agent(obs: Observation) -> str:
    statuses = (obs.instance_view.get("vmAgent") or {}).get("statuses") or []
    return str(statuses[0].get("displayStatus")) if statuses else "no status"


def _nic_ids(obs: Observation) -> set[str]:
    return {str(n.get("id", "")).lower() for n in obs.props.get("networkProfile", {}).get("networkInterfaces", [])}


def problems(before: Observation, now: Observation) -> list[str]:
    """What is still wrong with the recreated VM compared with what the remediation promised."""
    out = []
    if now.vm is None:
        return [f"VM {now.ref} does not exist"]
    state = now.props.get("provisioningState")
    if state != "Succeeded":
        out.append(f"provisioningState is {state}")
    if now.generalized:
        out.append("the VM is still generalized")
    if now.power_state != "running":
        out.append(f"power state is {now.power_state}")
    if _agent(now) != "Ready":
        out.append(f"VM agent is {_agent(now)}")
    want_nics, have_nics = _nic_ids(before), _nic_ids(now)
    if want_nics != have_nics:
        out.append(f"NICs differ: expected {sorted(want_nics)}, found {sorted(have_nics)}")
    want = {d.get("lun"): str((d.get("managedDisk") or {}).get("id", "")).lower()
            for d in before.props.get("storageProfile", {}).get("dataDisks", [])}
    have = {d.get("lun"): str((d.get("managedDisk") or {}).get("id", "")).lower()
            for d in now.props.get("storageProfile", {}).get("dataDisks", [])}
    if want != have:
        out.append(f"data disks differ: expected {want}, found {have}")
    return out


def verify(az: Azure, plan: Plan, params: dict[str, Any], progress: Callable[[str], None]) -> Observation:
    """Re-read the VM until it is healthy or the timeout passes; VerifyFailed lists the ways back."""
    timeout = float(params.get("agent_ready_timeout_s", 900.0))
    start = time.monotonic()
    last_note = ""
    ref = plan.observation.ref
    while True:
        # one GET with the instance view per poll; the full observation only once the VM looks healthy
        try:
            vm = az.compute.virtual_machines.get(ref.resource_group, ref.name, expand="instanceView").as_dict()
        except (HttpResponseError, ServiceRequestError) as e:
            raise call_failed(e, f"read {ref}") from e
        view = vm.get("properties", {}).pop("instanceView", {}) or {}
        now = Observation(ref=ref, subscription=plan.observation.subscription, vm=vm, instance_view=view)
        wrong = problems(plan.observation, now)
        if not wrong:
            full = observe(az, ref)
            wrong = problems(plan.observation, full)
            if not wrong:
                return full
        elapsed = time.monotonic() - start
        settled = now.props.get("provisioningState") in ("Succeeded", "Failed")
        hard = [w for w in wrong if not w.startswith(("VM agent is", "power state is starting"))]
        if (hard and settled) or elapsed > timeout:
            break
        note = "; ".join(wrong)
        if note != last_note:
            progress(f"waiting: {note}")
            last_note = note
        # poll often relative to the time already spent, so a slow boot is not overshot by much
        time.sleep(min(5.0, max(0.02, elapsed * 0.03)))
    ways_back = [f"the snapshots taken before the delete are kept: {', '.join(_snapshots(plan)) or 'none'}"]
    if plan.scenario == "from-os-disk":
        ways_back.append("if the guest was sysprepped, recreate from the captured image: "
                         f"invoke remediate --vm {plan.ref} --scenario from-image")
    raise VerifyFailed(f"{plan.ref} failed verification: {'; '.join(wrong)}. Ways back: {'; '.join(ways_back)}",
                       failures=wrong)


def _snapshots(plan: Plan) -> list[str]:
    return [c.resource_id.rsplit("/", 1)[-1] for s in plan.steps if s.name == "snapshot-disks" for c in s.calls]


def fallout(az: Azure, plan: Plan, after: Observation | None) -> list[str]:
    """What the operator must know or do now that the VM is back."""
    before = plan.observation
    out = []
    old_id, new_id = (before.vm or {}).get("identity") or {}, ((after.vm if after else None) or {}).get(
        "identity") or {}
    if old_id.get("principalId") and old_id.get("principalId") != new_id.get("principalId"):
        out.append(f"system-assigned identity has a new principal {new_id.get('principalId')} (was "
                   f"{old_id.get('principalId')}): role assignments of the old principal no longer apply; "
                   "grant them again")
    for ext in before.extensions:
        out.append(f"extension {ext.get('name')}: re-enter protected settings if it used any "
                   "(Azure never returns them)")
    for pip in before.public_ips.values():
        old_ip = pip.get("properties", {}).get("ipAddress")
        cur = get_resource(az, pip["id"])
        new_ip = (cur or {}).get("properties", {}).get("ipAddress")
        if old_ip != new_ip:
            out.append(f"public IP {pip['name']} changed: {old_ip} → {new_ip or 'none'}")
    if after is not None:
        for nic_id, nic in before.nics.items():
            cur = after.nics.get(nic_id)
            old = [c.get("properties", {}).get("privateIPAddress") for c in nic["properties"]["ipConfigurations"]]
            new = [c.get("properties", {}).get("privateIPAddress")
                   for c in (cur or {}).get("properties", {}).get("ipConfigurations", [])]
            if old != new:
                out.append(f"NIC {nic['name']} private address changed: {old} → {new}")
    if plan.scenario == "from-image":
        os_disk = before.props.get("storageProfile", {}).get("osDisk", {})
        if os_disk.get("deleteOption") == "Delete":
            out.append(f"the old OS disk {os_disk.get('name')} was deleted with the VM; its content is in the "
                       "snapshot listed below")
        else:
            out.append(f"the old OS disk {os_disk.get('name')} is kept, unattached")
    snaps = _snapshots(plan)
    if snaps:
        out.append(f"snapshots kept (delete them once you are satisfied): {', '.join(snaps)}")
    return out
