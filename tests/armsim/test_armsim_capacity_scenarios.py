"""The capacity scenarios' pinned clusters, through the real SDK: an availability set pinned by a running member to a
cluster without room for another member's size (``allocation-failure``'s shop-avset), and a running standalone VM
pinned to its own cluster (``size-not-in-cluster``'s api-05)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from armsim_env import Env
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from armsim import ArmSim
from armsim.errors import BadRequest

PINNED_MESSAGE = (
    "Allocation failed. If you are trying to add a new VM to an Availability Set or update/resize an existing VM in "
    "an Availability Set, please note that such Availability Set allocation is scoped to a single cluster, and it is "
    "possible that the cluster is out of capacity. Please read more about improving likelihood of allocation success "
    "at http://aka.ms/allocation-guidance.")
GENERIC_MESSAGE = (
    "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more about "
    "improving likelihood of allocation success at http://aka.ms/allocation-guidance")
RG = "rg-alloc"


def _failed(arm: ArmSim, name: str) -> list[dict[str, Any]]:
    return [json.loads(e["properties"]["statusMessage"])["error"] for e in arm.world.default.activity
            if e["status"]["value"] == "Failed" and e["resourceId"].endswith("/" + name)]


def _power(env: Env, rg: str, name: str) -> str:
    return next(s for s in env.statuses(rg, name) if s.startswith("PowerState/"))


def _cluster(arm: ArmSim, env: Env, rg: str, name: str) -> str | None:
    return arm.vm_facts(env.vm_id(rg, name))["cluster"]


def _size(env: Env, rg: str, name: str) -> str:
    return str(env.compute.virtual_machines.get(rg, name).hardware_profile.vm_size)


# --- allocation-failure: shop-avset -------------------------------------------------------------------------------


def test_pinned_set_member_cannot_start_until_the_pinning_member_is_deallocated(arm: ArmSim, env: Env) -> None:
    seeded = arm.seed("allocation-failure")
    ids = {name: env.vm_id(RG, name) for name in ("app-01", "web-01", "web-02", "app-02", "app-03", "shop-01",
                                                  "shop-02")}
    assert seeded["vms"] == [ids[n] for n in ("app-01", "web-01", "web-02", "app-02", "app-03")]  # unchanged
    assert seeded["targets"] == [ids["app-01"], ids["web-01"]]
    assert seeded["distractors"] == [ids["app-02"], ids["app-03"]]
    assert seeded["set_targets"] == [ids["shop-02"]] and seeded["set_members"] == [ids["shop-01"], ids["shop-02"]]
    shop_set = env.compute.availability_sets.get(RG, "shop-avset")
    assert seeded["pinned_set"] == shop_set.id
    assert {m.id for m in shop_set.virtual_machines} == {ids["shop-01"], ids["shop-02"]}
    pinned = seeded["set_cluster"]
    assert (_size(env, RG, "shop-01"), _power(env, RG, "shop-01")) == ("Standard_D2s_v5", "PowerState/running")
    assert (_size(env, RG, "shop-02"), _power(env, RG, "shop-02")) == ("Standard_D4s_v5", "PowerState/deallocated")
    assert _cluster(arm, env, RG, "shop-01") == pinned and "-gen5-" in pinned
    assert _failed(arm, "shop-02") == [{"code": "AllocationFailed", "message": PINNED_MESSAGE}]

    with pytest.raises(HttpResponseError) as e:  # still pinned: the same failure, as long as shop-01 holds on
        env.compute.virtual_machines.begin_start(RG, "shop-02").result()
    assert (e.value.error.code, e.value.error.message) == ("AllocationFailed", PINNED_MESSAGE)
    assert _power(env, RG, "shop-02") == "PowerState/deallocated" and _cluster(arm, env, RG, "shop-02") is None

    env.rg("rg-probe")  # the region's other v5 clusters do have Standard_D4s_v5 room
    probe = env.vm_body("rg-probe", "probe")
    probe["properties"]["hardwareProfile"]["vmSize"] = "Standard_D4s_v5"
    env.compute.virtual_machines.begin_create_or_update("rg-probe", "probe", probe).result()
    assert _cluster(arm, env, "rg-probe", "probe") not in (None, pinned)

    env.compute.virtual_machines.begin_deallocate(RG, "shop-01").result()
    env.compute.virtual_machines.begin_start(RG, "shop-02").result()
    moved = _cluster(arm, env, RG, "shop-02")
    assert moved is not None and moved != pinned and "-gen5-" in moved
    env.compute.virtual_machines.begin_start(RG, "shop-01").result()
    assert _cluster(arm, env, RG, "shop-01") == moved  # the set is pinned to shop-02's cluster now
    assert _power(env, RG, "shop-01") == _power(env, RG, "shop-02") == "PowerState/running"


def test_pinned_set_with_twenty_members(arm: ArmSim, env: Env) -> None:
    seeded = arm.seed("allocation-failure", set_members=20)
    names = [f"shop-{i:02d}" for i in range(1, 21)]
    assert seeded["set_members"] == [env.vm_id(RG, n) for n in names]
    assert seeded["set_targets"] == [env.vm_id(RG, "shop-02")]
    assert len(env.compute.availability_sets.get(RG, "shop-avset").virtual_machines) == 20
    pinned = seeded["set_cluster"]
    for name in names:
        if name == "shop-02":
            assert (_size(env, RG, name), _power(env, RG, name)) == ("Standard_D4s_v5", "PowerState/deallocated")
        else:
            assert (_size(env, RG, name), _power(env, RG, name)) == ("Standard_D2s_v5", "PowerState/running"), name
            assert _cluster(arm, env, RG, name) == pinned, name
    for name in names[2:-1]:  # every member but the last deallocated: shop-20 alone still pins the set
        env.compute.virtual_machines.begin_deallocate(RG, name).result()
    env.compute.virtual_machines.begin_deallocate(RG, "shop-01").result()
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_start(RG, "shop-02").result()
    assert (e.value.error.code, e.value.error.message) == ("AllocationFailed", PINNED_MESSAGE)
    env.compute.virtual_machines.begin_deallocate(RG, "shop-20").result()
    env.compute.virtual_machines.begin_start(RG, "shop-02").result()
    assert _cluster(arm, env, RG, "shop-02") not in (None, pinned)


@pytest.mark.parametrize("bad", [1, 0, 51, -3, "3", 2.5, True, None])
def test_set_members_must_be_an_integer_from_2_to_50(arm: ArmSim, env: Env, bad: Any) -> None:
    with pytest.raises(BadRequest) as e:
        arm.seed("allocation-failure", set_members=bad)
    assert e.value.status == 400 and "set_members" in e.value.message
    assert not env.resources.resource_groups.check_existence(RG)  # refused before anything was seeded


def test_set_members_through_the_control_api(arm: ArmSim, env: Env) -> None:
    url = f"{arm.endpoint}/_armsim/scenarios/allocation-failure"
    bad = requests.post(url, json={"set_members": 51}, verify=arm.ca_bundle, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"
    ok = requests.post(url, json={"set_members": 3}, verify=arm.ca_bundle, timeout=30)
    assert ok.status_code == 200, ok.text
    assert [i.rsplit("/", 1)[1] for i in ok.json()["set_members"]] == ["shop-01", "shop-02", "shop-03"]


def test_allocation_failure_in_a_pinned_set_names_the_set_standalone_does_not(arm: ArmSim, env: Env) -> None:
    """A resize that must stay on the cluster: in a set whose other member holds it, Azure's availability-set
    wording; for a standalone VM (its own cluster), the generic one. The size is kept either way."""
    env.rg("rg")
    avset = env.compute.availability_sets.create_or_update("rg", "as1", {
        "location": "eastus", "sku": {"name": "Aligned"},
        "properties": {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}}).id
    for name, props in (("vm1", {"availabilitySet": {"id": avset}}), ("vm2", {"availabilitySet": {"id": avset}}),
                        ("vm3", {})):
        body = env.vm_body("rg", name)
        body["properties"].update(props)
        env.compute.virtual_machines.begin_create_or_update("rg", name, body).result()
    cluster = _cluster(arm, env, "rg", "vm1")
    assert cluster == _cluster(arm, env, "rg", "vm3")
    arm.set_capacity("eastus", 0, size="Standard_D4s_v5", cluster=cluster)
    for name, message in (("vm1", PINNED_MESSAGE), ("vm3", GENERIC_MESSAGE)):
        with pytest.raises(HttpResponseError):  # a PATCH polls the VM body: provisioningState Failed
            env.compute.virtual_machines.begin_update(
                "rg", name, {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}).result()
        assert _failed(arm, name) == [{"code": "AllocationFailed", "message": message}], name
        view = env.compute.virtual_machines.instance_view("rg", name)
        assert (view.statuses[0].code, view.statuses[0].message) == ("ProvisioningState/failed/AllocationFailed",
                                                                     message)
        assert _size(env, "rg", name) == "Standard_D2s_v5"
    arm.set_capacity("eastus", None, size="Standard_D4s_v5", cluster=cluster)
    env.compute.virtual_machines.begin_update(
        "rg", "vm1", {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}).result()
    assert _size(env, "rg", "vm1") == "Standard_D4s_v5" and _cluster(arm, env, "rg", "vm1") == cluster


# --- size-not-in-cluster: api-05 ----------------------------------------------------------------------------------


def test_running_standalone_vm_is_pinned_to_its_own_cluster(arm: ArmSim, env: Env) -> None:
    rg = "rg-resize"
    seeded = arm.seed("size-not-in-cluster")
    api05 = env.vm_id(rg, "api-05")
    assert seeded["targets"] == [env.vm_id(rg, "api-01"), api05] and api05 in seeded["vms"]
    assert seeded["distractors"] == [env.vm_id(rg, n) for n in ("api-02", "api-03", "api-04")]
    assert [_size(env, rg, n) for n in ("api-01", "api-02", "api-03", "api-04")] == [
        "Standard_D2s_v5", "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D2s_v5"]
    vm = env.compute.virtual_machines.get(rg, "api-05")
    assert vm.availability_set is None and vm.hardware_profile.vm_size == "Standard_D2s_v5"
    assert _power(env, rg, "api-05") == "PowerState/running"
    own = _cluster(arm, env, rg, "api-05")
    assert own is not None and "-gen5-" in own
    prefix = ("Unable to resize the VM 'api-05' because the requested size Standard_F4s_v2 is not available in the "
              "current hardware cluster. The available sizes are: ")
    [failure] = _failed(arm, "api-05")
    assert failure["code"] == "OperationNotAllowed" and failure["message"].startswith(prefix)
    assert failure["message"].endswith("Read more on VM resizing strategy at https://aka.ms/azure-resizevm.")

    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_update(
            rg, "api-05", {"properties": {"hardwareProfile": {"vmSize": "Standard_F4s_v2"}}})
    assert e.value.error.code == "OperationNotAllowed" and e.value.error.message.startswith(prefix)
    assert e.value.error.target == "vmSize" and _size(env, rg, "api-05") == "Standard_D2s_v5"
    running = {s.name for s in env.compute.virtual_machines.list_available_sizes(rg, "api-05")}
    assert "Standard_F4s_v2" not in running

    env.compute.virtual_machines.begin_deallocate(rg, "api-05").result()
    assert "Standard_F4s_v2" in {s.name for s in env.compute.virtual_machines.list_available_sizes(rg, "api-05")}
    done = env.compute.virtual_machines.begin_update(
        rg, "api-05", {"properties": {"hardwareProfile": {"vmSize": "Standard_F4s_v2"}}}).result()
    assert done.hardware_profile.vm_size == "Standard_F4s_v2"
    env.compute.virtual_machines.begin_start(rg, "api-05").result()
    placed = _cluster(arm, env, rg, "api-05")
    assert placed is not None and "-compute-" in placed
    assert _power(env, rg, "api-05") == "PowerState/running"
