"""A rebuilt NIC keeps its private address when it is free (issue 14), end to end through the real SDK against
armsim: the plan says so (one subnet read, not one per address), the rebuilt NIC holds the old address as Static,
verification compares addresses, and the fallout says the address is now Static. When another NIC takes the address
between the plan and the rebuild, the rebuild falls back to the next free address and the fallout says who holds the
old one. And ``nics-as-before``, judged on observations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from remediation_helpers import Rig, assert_converged, before, run_to_completion

from runbooks.apply import Hooks
from runbooks.azure import Call
from runbooks.changes import Action, Expect
from runbooks.checks import CHECKS
from runbooks.errors import ApplyFailed
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
    assert " ".join(plan_text(plan).split()).count(NOTE) == 1  # the dry run shows it (wrapped)
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
        if "✓ delete VM app-01" in line and not taken:  # the VM (and its NIC) is gone: someone takes .4
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
    was_static = _obs("10.0.0.4", "Static", "g1")
    assert check.fn(was_static, _obs("10.0.0.4", "Static", "g2")) == []
    assert check.fn(was_static, _obs("10.0.0.9", "Dynamic", "g2")) == [
        "NIC vm1-nic (ipconfig1) has 10.0.0.9 (Dynamic), expected 10.0.0.4"]  # a Static address never moves


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


def _ipconfigs(obs: Observation) -> dict[str, tuple[Any, Any]]:
    nic = next(iter(obs.nics.values()))
    return {c["name"]: (c["properties"].get("privateIPAddress"), c["properties"].get("privateIPAllocationMethod"))
            for c in nic["properties"]["ipConfigurations"]}


def _take_when_rebuilding(rig: Rig, subnet: str, taken: list[str], address: str | None = None) -> Hooks:
    """Hooks whose progress, once the VM (and its NIC) is gone, makes another NIC in the subnet: Dynamic (the lowest
    free address, as Azure hands it out) or asking for ``address``."""
    network = rig.arm.network_client(retry_total=0)
    props: dict[str, Any] = {"subnet": {"id": subnet}}
    if address:
        props.update(privateIPAllocationMethod="Static", privateIPAddress=address)

    def progress(line: str) -> None:
        rig.progress.append(line)
        if "✓ delete VM app-01" in line and not taken:  # the NIC rebuild may start beside the disks
            nic = network.network_interfaces.begin_create_or_update("rg-demo", "intruder-nic", {
                "location": "eastus", "properties": {"ipConfigurations": [{"name": "ipconfig1",
                                                                           "properties": props}]}}).result()
            taken.append(nic.ip_configurations[0].private_ip_address)

    return Hooks(confirm=lambda q: True, progress=progress)


def _with_static_ipconfig(rig: Rig, name: str, address: str, *, add: bool) -> str:
    """app-01-nic with ipconfig ``name`` pinned to ``address`` (a second ipconfig when ``add``); its subnet's id."""
    from azure.mgmt.network.models import NetworkInterfaceIPConfiguration

    network = rig.arm.network_client(retry_total=0)
    nic = network.network_interfaces.get("rg-demo", "app-01-nic")
    subnet = nic.ip_configurations[0].subnet
    if add:
        nic.ip_configurations.append(NetworkInterfaceIPConfiguration(
            name=name, subnet=subnet, primary=False, private_ip_allocation_method="Static",
            private_ip_address=address))
    else:
        nic.ip_configurations[0].private_ip_allocation_method = "Static"
        nic.ip_configurations[0].private_ip_address = address
    network.network_interfaces.begin_create_or_update("rg-demo", "app-01-nic", nic).result()
    return str(subnet.id)


def test_only_the_formerly_dynamic_ipconfig_arm_names_moves(rig: Rig) -> None:
    """The realistic race: the next Dynamic NIC of the subnet gets the deleted VM's address (the lowest free one).
    Only that ipconfig falls back; the other one, Static before, keeps its address; the run counts no failed call."""
    from runbooks.runs import run_summary, run_text, show_run

    rig.arm.seed("generalized-vm")
    subnet = _with_static_ipconfig(rig, "ipconfig2", "10.0.0.60", add=True)
    b = before(rig, VM)
    assert _ipconfigs(b.obs) == {"ipconfig1": ("10.0.0.4", "Dynamic"), "ipconfig2": ("10.0.0.60", "Static")}
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(VM), "from-image")
    assert NOTE in _rebuild_step(plan).notes
    taken: list[str] = []
    outcome = remediate(az, plan, _take_when_rebuilding(rig, subnet, taken), yes=True)
    assert taken == ["10.0.0.4"]  # a Dynamic NIC took the address the deleted VM released
    now = assert_converged(rig, b, "from-image")  # verification passed
    got = _ipconfigs(now)
    assert got["ipconfig2"] == ("10.0.0.60", "Static")  # pinned as before
    assert got["ipconfig1"][1] == "Dynamic" and got["ipconfig1"][0] not in (None, "10.0.0.4", "10.0.0.60")
    assert any(line.endswith("instead: rebuild NIC app-01-nic with the next free address (Dynamic) where another NIC "
                             "took its old one since the plan (ipconfig1)") for line in rig.progress), rig.progress
    assert f"NIC app-01-nic (ipconfig1) private address changed: 10.0.0.4 → {got['ipconfig1'][0]} (Dynamic; " \
        "10.0.0.4 is held by intruder-nic (ipconfig1) now)" in outcome.fallout
    assert not any("(ipconfig2)" in f for f in outcome.fallout), outcome.fallout
    store = store_from_env()
    row = run_summary(store.open(plan.run_id))
    assert (row["status"], row["calls_failed"], row["calls_fallen_back"]) == ("succeeded", 0, 1), row
    text = run_text(show_run(store, plan.run_id))
    assert "0 failed, 1 made as their fallback instead" in text


def test_a_static_address_taken_during_the_run_stops_it_naming_the_holder(rig: Rig) -> None:
    """Before issue 14 such a rebuild was refused and the run stopped for the operator: it still is (no fallback
    moves an address that was Static), and the error names who holds it."""
    rig.arm.seed("generalized-vm")
    subnet = _with_static_ipconfig(rig, "ipconfig1", "10.0.0.50", add=False)
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(VM), "from-image")
    assert _rebuild_step(plan).actions[0].fallback is None
    taken: list[str] = []
    with pytest.raises(ApplyFailed) as e:
        remediate(az, plan, _take_when_rebuilding(rig, subnet, taken, "10.0.0.50"), yes=True)
    assert taken == ["10.0.0.50"]
    assert e.value.code == "PrivateIPAddressIsAllocated"
    assert "10.0.0.50" in str(e.value) and "/networkInterfaces/intruder-nic/ipConfigurations/ipconfig1" in str(e.value)
    assert not any("instead:" in line for line in rig.progress)
    with pytest.raises(ResourceNotFoundError):
        rig.arm.network_client(retry_total=0).network_interfaces.get("rg-demo", "app-01-nic")  # not made Dynamic
    events = store_from_env().open(plan.run_id).events()
    assert not [e for e in events if e.get("event") == "call-fallback"]


def test_a_refused_subnet_read_leaves_holders_unknown_and_the_plan_says_so(rig: Rig) -> None:
    """A VNet outside the role's scope (403 on the subnet read) does not stop the plan: who holds the address is
    unknown, the note says why, the rebuild asks for the address and keeps its fallback."""
    rig.arm.seed("generalized-vm")
    b = before(rig, VM)
    rig.arm.add_fault(method="GET", path=r"/subnets/[^/]+$", action="error", status=403, times=0, error={
        "code": "AuthorizationFailed", "message": "The client 'runbook-identity' with object id 'runbook-identity' "
        "does not have authorization to perform action 'Microsoft.Network/virtualNetworks/subnets/read' over scope "
        "'/subscriptions/x/resourceGroups/rg-demo/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default' "
        "or the scope is invalid. If access was recently granted, please refresh your credentials."})
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(VM), "from-image")
    note = "NIC app-01-nic (ipconfig1): asks for 10.0.0.4 again (Static; it was Dynamic); who holds which address " \
        "in its subnet is not known (reading the subnet was refused: AuthorizationFailed (HTTP 403)); if another NIC " \
        "holds it, the rebuild takes the next free one (Dynamic)"
    step = _rebuild_step(plan)
    assert note in step.notes and " ".join(plan_text(plan).split()).count(note) == 1
    assert step.actions[0].fallback is not None
    remediate(az, plan, rig.hooks(), yes=True)
    assert _ipconfig(assert_converged(rig, b, "from-image"))["privateIPAddress"] == "10.0.0.4"


def test_the_fallback_names_one_ipconfig_or_else_all_formerly_dynamic_ones() -> None:
    nic_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vm1-nic"

    def cfg(name: str, method: str, address: str | None = None) -> dict[str, Any]:
        return {"name": name, "properties": {"privateIPAllocationMethod": method,
                                             **({"privateIPAddress": address} if address else {})}}

    def put(*configs: dict[str, Any]) -> Call:
        return Call("network", "network_interfaces.begin_create_or_update",
                    {"parameters": {"properties": {"ipConfigurations": list(configs)}}}, nic_id, "create", "rebuild")

    asked = put(cfg("a", "Static", "10.0.0.4"), cfg("b", "Static", "10.0.0.5"), cfg("c", "Static", "10.0.0.60"))
    fallback = put(cfg("a", "Dynamic"), cfg("b", "Dynamic"), cfg("c", "Static", "10.0.0.60"))  # c was Static
    action = Action(asked, (), fallback=fallback, fallback_on=("PrivateIPAddressIsAllocated",))

    def refusal(name: str, owner: str = nic_id) -> str:
        return f"failed: PrivateIPAddressIsAllocated: IP configuration {owner}/ipConfigurations/{name} is using the " \
            "private IP address 10.0.0.4 which is already allocated to resource /x/other-nic/ipConfigurations/x."

    only_a = action.instead(asked, refusal("a"))
    assert only_a is not None
    assert only_a.args["parameters"]["properties"]["ipConfigurations"] == [
        cfg("a", "Dynamic"), cfg("b", "Static", "10.0.0.5"), cfg("c", "Static", "10.0.0.60")]
    then_b = action.instead(only_a, refusal("b"))  # b was taken too: it falls back as well, a keeps falling back
    assert then_b is not None and then_b.args == fallback.args and then_b.summary == "rebuild (a, b)"
    assert action.instead(asked, refusal("c")) is None  # c was Static: the refusal stands
    assert action.instead(then_b, refusal("a")) is None  # nothing left to un-pin
    assert action.instead(asked, "failed: PrivateIPAddressInUse: another wording") == fallback  # all formerly Dynamic
    assert action.instead(asked, refusal("a", owner=nic_id.replace("vm1", "vm2"))) == fallback
    assert action.instead(fallback, "another wording") is None
