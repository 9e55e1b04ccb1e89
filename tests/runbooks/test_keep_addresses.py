"""A rebuilt NIC keeps its private address when it is free (issue 14), end to end through the real SDK against
armsim: the plan says so (one subnet read, not one per address), the rebuilt NIC holds the old address as Static,
verification compares addresses, and the fallout says the address is now Static. When another NIC takes the address
between the plan and the rebuild, the rebuild falls back to the next free address and the fallout says who holds the
old one. And ``nics-as-before``, judged on observations."""

from __future__ import annotations

import json
from typing import Any

from remediation_helpers import Rig, assert_converged, before, run_to_completion

from runbooks.apply import Hooks
from runbooks.azure import Call
from runbooks.changes import Action, Expect
from runbooks.checks import CHECKS
from runbooks.journal import store_from_env
from runbooks.observe import Observation, VmRef
from runbooks.remediate import plan_remediation, remediate, rollback_run
from runbooks.render import plan_text

VM = "rg-demo/app-01"
# what apply may do is in the note the operator approves: the fallback when another NIC takes the address first
NOTE = "NIC app-01-nic (ipconfig1): keeps 10.0.0.4 (Static; it was Dynamic; if another NIC takes it first: the next " \
    "free one)"


def _ipconfig(obs: Observation) -> dict[str, Any]:
    nic = next(iter(obs.nics.values()))
    return dict(nic["properties"]["ipConfigurations"][0]["properties"])


def _rebuild_step(plan: Any) -> Any:
    return next(s for s in plan.steps if s.name == "rebuild-deleted-nics")


def test_rebuilt_nic_keeps_its_free_address_as_static(rig: Rig) -> None:
    rig.arm.seed("generalized-vm")  # three VMs in one subnet: the next free address after the delete is not .4
    b = before(rig, VM)
    old = _ipconfig(b.obs)
    assert (old["privateIPAddress"], old["privateIPAllocationMethod"]) == ("10.0.0.4", "Dynamic")
    neighbours = {n: _ipconfig(rig.observe(n))["privateIPAddress"] for n in ("rg-demo/api-01", "rg-demo/app-02")}
    az = rig.az()

    mark = rig.arm.last_request
    _, plan = plan_remediation(az, VmRef.parse(VM), "from-image")
    subnet_reads = [r for r in rig.arm.requests(mark) if "/subnets/" in r["path"].lower()]
    assert len(subnet_reads) == 1, subnet_reads  # one read of the subnet, whatever the number of addresses
    step = _rebuild_step(plan)
    assert NOTE in step.notes
    recorded = next(s for s in plan.steps if s.name == "record-network").summary
    assert "app-01-nic (ipconfig1 10.0.0.4 Dynamic)" in recorded
    assert plan_text(plan).count(NOTE) == 1  # the dry run shows it
    action = step.actions[0]
    asked = action.call.args["parameters"]["properties"]["ipConfigurations"][0]["properties"]
    assert (asked["privateIPAllocationMethod"], asked["privateIPAddress"]) == ("Static", "10.0.0.4")
    assert action.fallback is not None and "PrivateIPAddressIsAllocated" in action.fallback_on

    outcome = remediate(az, plan, rig.hooks(), yes=True)
    now = assert_converged(rig, b, "from-image")
    kept = _ipconfig(now)
    assert (kept["privateIPAddress"], kept["privateIPAllocationMethod"]) == ("10.0.0.4", "Static")
    assert any(f.startswith("NIC app-01-nic (ipconfig1) kept its private address 10.0.0.4: it is now Static")
               for f in outcome.fallout), outcome.fallout
    assert not any("private address changed" in f for f in outcome.fallout)
    assert {n: _ipconfig(rig.observe(n))["privateIPAddress"] for n in neighbours} == neighbours
    assert not any("instead:" in line for line in rig.progress)


def test_address_taken_between_plan_and_rebuild_falls_back_to_the_next_free_one(rig: Rig) -> None:
    rig.arm.seed("generalized-vm")
    b = before(rig, VM)
    subnet = _ipconfig(b.obs)["subnet"]["id"]
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(VM), "from-image")
    assert NOTE in _rebuild_step(plan).notes  # free at plan time

    network = rig.arm.network_client(retry_total=0)
    taken: list[str] = []

    def progress(line: str) -> None:
        rig.progress.append(line)
        if "rebuild-deleted-nics:" in line and not taken:  # the VM (and its NIC) is gone: someone takes .4
            nic = network.network_interfaces.begin_create_or_update("rg-demo", "intruder-nic", {
                "location": "eastus", "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
                    "subnet": {"id": subnet}, "privateIPAllocationMethod": "Static",
                    "privateIPAddress": "10.0.0.4"}}]}}).result()
            taken.append(nic.ip_configurations[0].private_ip_address)

    outcome = remediate(az, plan, Hooks(confirm=lambda q: True, progress=progress), yes=True)
    assert taken == ["10.0.0.4"]
    now = assert_converged(rig, b, "from-image")  # rebuilt all the same, verification passed
    got = _ipconfig(now)
    assert got["privateIPAllocationMethod"] == "Dynamic" and got["privateIPAddress"] not in (None, "10.0.0.4")
    assert any("PrivateIPAddressIsAllocated; instead: rebuild NIC app-01-nic with the next free address" in line
               for line in rig.progress), rig.progress
    line = f"NIC app-01-nic (ipconfig1) private address changed: 10.0.0.4 → {got['privateIPAddress']} (Dynamic; " \
           "10.0.0.4 is held by intruder-nic (ipconfig1) now)"
    assert line in outcome.fallout, outcome.fallout
    events = store_from_env().open(plan.run_id).events()
    assert [e["code"] for e in events if e.get("event") == "call-fallback"] == ["PrivateIPAddressIsAllocated"]
    assert [e["code"] for e in events if e.get("event") == "call-failed"] == ["PrivateIPAddressIsAllocated"]


def test_an_already_static_address_is_kept_as_before(rig: Rig) -> None:
    rig.arm.seed("generalized-vm")
    network = rig.arm.network_client(retry_total=0)
    nic = network.network_interfaces.get("rg-demo", "app-01-nic")  # a NIC is a resource of its own: it may change
    nic.ip_configurations[0].private_ip_allocation_method = "Static"
    nic.ip_configurations[0].private_ip_address = "10.0.0.50"
    network.network_interfaces.begin_create_or_update("rg-demo", "app-01-nic", nic).result()
    b = before(rig, VM)
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(VM), "from-image")
    assert "NIC app-01-nic (ipconfig1): keeps 10.0.0.50 (Static, as before; if another NIC takes it first: Azure " \
        "refuses the rebuild and the run stops there)" in _rebuild_step(plan).notes
    assert _rebuild_step(plan).actions[0].fallback is None  # a Static address is never un-pinned
    outcome = remediate(az, plan, rig.hooks(), yes=True)
    now = assert_converged(rig, b, "from-image")
    kept = _ipconfig(now)
    assert (kept["privateIPAddress"], kept["privateIPAllocationMethod"]) == ("10.0.0.50", "Static")
    assert not any("app-01-nic" in f for f in outcome.fallout), outcome.fallout  # nothing changed to report


def _obs(address: str, method: str, guid: str) -> Observation:
    nic_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vm1-nic"
    vm = {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", "name": "vm1",
          "properties": {"networkProfile": {"networkInterfaces": [{"id": nic_id}]}}}
    nic = {"id": nic_id, "name": "vm1-nic", "properties": {"resourceGuid": guid, "ipConfigurations": [
        {"name": "ipconfig1", "properties": {"privateIPAddress": address, "privateIPAllocationMethod": method}}]}}
    return Observation(VmRef.parse("rg/vm1"), "s", vm, nics={nic_id.lower(): nic})


def test_nics_as_before_compares_addresses() -> None:
    check = CHECKS["nics-as-before"]
    assert "nics" in check.needs
    before_run = _obs("10.0.0.4", "Dynamic", "g1")
    assert check.fn(before_run, _obs("10.0.0.4", "Dynamic", "g1")) == []
    assert check.fn(before_run, _obs("10.0.0.4", "Static", "g2")) == []  # rebuilt, kept as Static
    assert check.fn(before_run, _obs("10.0.0.9", "Dynamic", "g2")) == []  # rebuilt, the old one was taken
    assert check.fn(before_run, _obs("10.0.0.9", "Dynamic", "g1")) == [
        "NIC vm1-nic (ipconfig1) has 10.0.0.9 (Dynamic), expected 10.0.0.4"]  # same NIC, moved: wrong
    assert check.fn(before_run, _obs("10.0.0.9", "Static", "g2")) == [
        "NIC vm1-nic (ipconfig1) has 10.0.0.9 (Static), expected 10.0.0.4"]  # pinned to another address: wrong


def test_a_fallback_survives_the_plan_file() -> None:
    """A saved plan (the run store's copy, what a resume applies) keeps each action's fallback."""
    call = Call("network", "network_interfaces.begin_create_or_update", {"parameters": {"a": 1}}, "/x/nic", "create",
                "rebuild NIC nic (Static 10.0.0.4)")
    instead = Call("network", "network_interfaces.begin_create_or_update", {"parameters": {"a": 2}}, "/x/nic",
                   "create", "rebuild NIC nic with the next free address(es)")
    action = Action(call, (Expect("/x/nic", "exists", True),), fallback=instead,
                    fallback_on=("PrivateIPAddressIsAllocated",))
    again = Action.from_dict(json.loads(json.dumps(action.to_dict())))
    assert again == action
    assert "fallback" not in Action(call, ()).to_dict()  # plans without one are written as before


def test_rollback_leaves_the_kept_address_and_says_the_nic_stays(rig: Rig) -> None:
    rig.arm.seed("generalized-vm")
    outcome = run_to_completion(rig, VM, "from-image")
    dry, _ = rollback_run(rig.az(), outcome.plan.run_id, rig.hooks(), dry_run=True)
    assert any("rebuild-deleted-nics" in line and "stays" in line for line in dry.cannot), dry.cannot
    rollback_run(rig.az(), outcome.plan.run_id, rig.hooks(), yes=True)
    kept = _ipconfig(rig.observe(VM))
    assert (kept["privateIPAddress"], kept["privateIPAllocationMethod"]) == ("10.0.0.4", "Static")
