"""What a playbook's scenario names after its steps: ``verify:`` checks and ``fallout:`` reports.

* A *check* (``CHECKS``) compares the VM now with the VM observed before the run and returns what is wrong
  (an empty list: it passes). A scenario lists it as ``verify: [{check: nics-as-before}]``, beside the signal
  conditions (``{signal: agent-ready, holds: true, wait: true}``) that ``runbooks.signals`` evaluates.
* A *fallout report* (``FALLOUT``) says what the operator must know or do now that the run is over (a new
  identity principal, a public address that changed, the snapshots kept). A scenario lists them as
  ``fallout: [identity-principal, snapshots-kept]``.

Adding one is a function here, decorated with ``@check(name, needs=…)`` or ``@fallout(name)``; the playbook
linter knows it from then on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runbooks.addresses import holder_label
from runbooks.observe import Observation, dotted, gather

if TYPE_CHECKING:
    from runbooks.azure import Azure

CheckFn = Callable[[Observation, Observation], list[str]]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    fn: CheckFn
    needs: frozenset[str]


CHECKS: dict[str, CheckSpec] = {}


def check(name: str, *, needs: tuple[str, ...] = ("vm",)) -> Callable[[CheckFn], CheckFn]:
    """Register a verification check ``(before, now) -> problems`` that reads the facts ``needs``."""

    def register(fn: CheckFn) -> CheckFn:
        CHECKS[name] = CheckSpec(name, fn, frozenset(needs))
        return fn

    return register


def _nic_ids(obs: Observation) -> set[str]:
    return {str(n.get("id", "")).lower() for n in obs.props.get("networkProfile", {}).get("networkInterfaces", [])}


def _addresses(nic: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """ipconfig name → (private address, allocation method)."""
    return {str(c.get("name")): (c.get("properties", {}).get("privateIPAddress"),
                                 c.get("properties", {}).get("privateIPAllocationMethod") or "Dynamic")
            for c in nic.get("properties", {}).get("ipConfigurations", [])}


@check("nics-as-before", needs=("vm", "nics"))
def nics_as_before(before: Observation, now: Observation) -> list[str]:
    """The VM has the same NICs as before the run, each ipconfig with the private address it had. A NIC the run
    rebuilt (a new resourceGuid) may have another address only where it was Dynamic before and still is: another
    NIC held the old one (the plan or the fallout says so). A Static address never moves."""
    want, have = _nic_ids(before), _nic_ids(now)
    if want != have:
        return [f"NICs differ: expected {sorted(want)}, found {sorted(have)}"]
    problems = []
    for key, old in before.nics.items():
        new = now.nics.get(key)
        if new is None:
            continue  # not read now (a VM whose NICs were not read before the run is compared by id only)
        rebuilt = old.get("properties", {}).get("resourceGuid") != new.get("properties", {}).get("resourceGuid")
        found = _addresses(new)
        for name, (address, method) in _addresses(old).items():
            if name not in found:
                problems.append(f"NIC {old.get('name')} has no ipconfig {name} any more")
            elif found[name][0] != address and not (rebuilt and method == found[name][1] == "Dynamic"):
                problems.append(f"NIC {old.get('name')} ({name}) has {found[name][0]} ({found[name][1]}), expected "
                                f"{address}")
    return problems


def _data_disks(obs: Observation) -> dict[Any, str]:
    return {d.get("lun"): str((d.get("managedDisk") or {}).get("id", "")).lower()
            for d in obs.props.get("storageProfile", {}).get("dataDisks", [])}


@check("data-disks-as-before")
def data_disks_as_before(before: Observation, now: Observation) -> list[str]:
    """The VM has the same data disks at the same LUNs as before the run."""
    want, have = _data_disks(before), _data_disks(now)
    return [] if want == have else [f"data disks differ: expected {want}, found {have}"]


@check("size-as-before")
def size_as_before(before: Observation, now: Observation) -> list[str]:
    """The VM has the size it had before the run."""
    want = before.props.get("hardwareProfile", {}).get("vmSize")
    have = now.props.get("hardwareProfile", {}).get("vmSize")
    return [] if want == have else [f"size differs: expected {want}, found {have}"]


@check("set-members-running", needs=("vm", "placement"))
def set_members_running(before: Observation, now: Observation) -> list[str]:
    """Every other member of the VM's availability set that was running before the run is running again."""
    running = {k: m for k, m in before.members.items() if str(m.get("powerState")) == "running"}
    down = [f"{m.get('name')} is {now.members.get(k, {}).get('powerState') or 'gone'}" for k, m in running.items()
            if str(now.members.get(k, {}).get("powerState")) != "running"]
    return [f"members of the availability set not running again: {', '.join(sorted(down))}"] if down else []


# --- fallout ------------------------------------------------------------------------------------------


@dataclass
class FalloutContext:
    """What a fallout report reads: the connection, the VM before the run and after it (None when the run
    failed before verification), and the snapshots the run made."""

    az: Azure | None
    before: Observation
    after: Observation | None
    snapshots: list[str] = field(default_factory=list)  # snapshot names


FalloutFn = Callable[[FalloutContext], list[str]]


@dataclass(frozen=True)
class FalloutSpec:
    name: str
    fn: FalloutFn
    needs: frozenset[str]  # the facts it reads from the observation after the run


FALLOUT: dict[str, FalloutSpec] = {}


def fallout(name: str, *, needs: tuple[str, ...] = ()) -> Callable[[FalloutFn], FalloutFn]:
    """Register a fallout report that reads the facts ``needs`` of the VM after the run."""

    def register(fn: FalloutFn) -> FalloutFn:
        FALLOUT[name] = FalloutSpec(name, fn, frozenset(needs))
        return fn

    return register


@fallout("identity-principal")
def identity_principal(ctx: FalloutContext) -> list[str]:
    """A recreated VM gets a new system-assigned identity principal: the old one's role assignments are gone."""
    old = (ctx.before.vm or {}).get("identity") or {}
    new = ((ctx.after.vm if ctx.after else None) or {}).get("identity") or {}
    if old.get("principalId") and old.get("principalId") != new.get("principalId"):
        return [f"system-assigned identity has a new principal {new.get('principalId')} (was "
                f"{old.get('principalId')}): role assignments of the old principal no longer apply; grant them again"]
    return []


@fallout("protected-settings")
def protected_settings(ctx: FalloutContext) -> list[str]:
    """Azure never returns extensions' protected settings, so restored extensions lack them."""
    return [f"extension {ext.get('name')}: re-enter protected settings if it used any (Azure never returns them)"
            for ext in ctx.before.extensions]


@fallout("public-ip-addresses")
def public_ip_addresses(ctx: FalloutContext) -> list[str]:
    """Public IP addresses that changed during the run."""
    from runbooks.azure import get_resource

    out = []
    for pip in ctx.before.public_ips.values():
        old_ip = pip.get("properties", {}).get("ipAddress")
        seen = ctx.after.public_ips if ctx.after is not None and "nics" in ctx.after.gathered else {}
        cur = seen.get(str(pip["id"]).lower()) or (get_resource(ctx.az, pip["id"]) if ctx.az is not None else None)
        new_ip = (cur or {}).get("properties", {}).get("ipAddress")
        if old_ip != new_ip:
            out.append(f"public IP {pip['name']} changed: {old_ip} → {new_ip or 'none'}")
    return out


@fallout("private-ip-addresses", needs=("nics",))
def private_ip_addresses(ctx: FalloutContext) -> list[str]:
    """Private addresses of the VM's NICs: each one that changed during the run (and who holds the old one now),
    each one a rebuilt NIC kept by making it Static (a later operator may want Dynamic back)."""
    if ctx.after is None:
        return []
    out = []
    for nic_id, nic in ctx.before.nics.items():
        cur = ctx.after.nics.get(nic_id) or {}
        found = _addresses(cur)
        for name, (address, method) in _addresses(nic).items():
            new, new_method = found.get(name, (None, None))
            if new == address and new_method == "Static" and method != "Static":
                out.append(f"NIC {nic['name']} ({name}) kept its private address {address}: it is now Static (it "
                           "was Dynamic); set it back to Dynamic if you prefer (Azure may then move it when the NIC "
                           "is next rebuilt)")
            elif new != address:
                if ctx.az is not None and "subnets" not in ctx.after.gathered:  # who holds it now: read only then
                    gather(ctx.az, ctx.after, {"subnets"})
                subnet = dotted(next((c for c in nic["properties"]["ipConfigurations"] if c.get("name") == name), {}),
                                "properties.subnet.id")
                holder = holder_label(ctx.after, str(subnet or ""), address)
                why = f"; {address} is held by {holder} now" if holder else ""
                out.append(f"NIC {nic['name']} ({name}) private address changed: {address} → {new or 'none'} "
                           f"({new_method or 'gone'}{why})")
    return out


@fallout("old-os-disk")
def old_os_disk(ctx: FalloutContext) -> list[str]:
    """Where the old OS disk went when the VM got a new one (from an image)."""
    os_disk = ctx.before.props.get("storageProfile", {}).get("osDisk", {})
    if os_disk.get("deleteOption") == "Delete":
        return [f"the old OS disk {os_disk.get('name')} was deleted with the VM; its content is in the snapshot "
                "listed below"]
    return [f"the old OS disk {os_disk.get('name')} is kept, unattached"]


@fallout("snapshots-kept")
def snapshots_kept(ctx: FalloutContext) -> list[str]:
    """The snapshots the run made, which it never deletes."""
    if not ctx.snapshots:
        return []
    return [f"snapshots kept (delete them once you are satisfied): {', '.join(ctx.snapshots)}"]


@fallout("temporary-disk")
def temporary_disk(ctx: FalloutContext) -> list[str]:
    """The VM moved host: whatever was on its temporary disk is gone."""
    return [f"{ctx.before.ref.name} runs on a new host: its temporary disk started empty (page file and caches "
            "are rebuilt by the guest; anything else kept there is lost)"]


@check("locks-as-before", needs=("vm", "locks"))
def locks_as_before(before: Observation, now: Observation) -> list[str]:
    """Every management lock that covered the VM before the run covers it again, with the same definition
    (name, scope, level, notes, owners)."""
    from runbooks.scope_locks import definition

    have = {str(lk.get("id", "")).lower(): definition(lk) for lk in now.locks}
    problems = []
    for lock in before.locks:
        want = definition(lock)
        found = have.get(want["id"].lower())
        if found is None:
            problems.append(f"lock {want['name']} ({want['level']}) at {want['scope']} is missing")
        elif found != want:
            diff = ", ".join(f"{k} {want[k]!r} → {found[k]!r}" for k in want if want[k] != found[k])
            problems.append(f"lock {want['name']} differs: {diff}")
    return problems
