"""Runs that cannot hurt (first slices): throttling hints never make a run silent for long, run files are
private, a saved plan cannot be edited into other calls, a stale run is refused. On armsim, real SDK."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from remediation_helpers import Rig, before, seed

from runbooks.errors import ApplyFailed, JournalError, PlanDrifted, StepRefused
from runbooks.journal import LocalStore, store_from_env
from runbooks.observe import VmRef, observe
from runbooks.remediate import apply_saved, load_plan_file, plan_remediation, remediate

APP = "rg-demo/app-01"


def test_a_429_asking_for_an_hour_is_one_clear_error_not_an_hour_of_silence(rig: Rig) -> None:
    rig.arm.seed("healthy")
    rig.arm.add_fault(method="GET", path="/virtualMachines/web-01$", action="error", status=429,
                      headers={"Retry-After": "3600"}, error={"code": "TooManyRequests", "message": "slow down"})
    started = time.monotonic()
    with pytest.raises(ApplyFailed, match=r"asks to wait 3600 s \(Retry-After\), more than 120 s") as info:
        observe(rig.az(), VmRef.parse("rg-web/web-01"))
    assert time.monotonic() - started < 30 and info.value.code == "TooManyRequests"


def test_a_garbage_retry_after_is_ignored_and_the_call_is_retried(rig: Rig) -> None:
    rig.arm.seed("healthy")
    rig.arm.add_fault(method="GET", path="/virtualMachines/web-01$", action="error", status=429,
                      headers={"Retry-After": "soon-ish"}, error={"code": "TooManyRequests", "message": "slow down"})
    obs = observe(rig.az(), VmRef.parse("rg-web/web-01"), ["instance-view"])
    assert obs.vm is not None and obs.power_state == "running"


def test_plans_journals_and_locks_are_private(rig: Rig, tmp_path: Path) -> None:
    seed(rig, APP)
    rig.arm.seed("generalized-without-sysprep")
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(APP), "from-image")
    remediate(az, plan, rig.hooks(), yes=True)
    files = [p for p in rig.home.rglob("*") if p.is_file()]
    folders = [rig.home, *(p for p in rig.home.rglob("*") if p.is_dir())]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), \
        {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in folders)
    out = tmp_path / "plan.json"
    done = rig.invoke("remediate", "--vm", "rg-demo/api-01", "--scenario", "from-os-disk", "--dry-run",
                      "--plan-out", str(out))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, done.stderr


def test_a_store_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    from runbooks.errors import UsageError

    path = tmp_path / "not-a-folder"
    path.write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        store_from_env(str(path))
    with pytest.raises(UsageError, match="cannot use"):
        LocalStore(path / "sub").lock("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
                                      "virtualMachines/v", "r")


def _saved(rig: Rig, tmp_path: Path, vm: str = "rg-demo/api-01", scenario: str = "from-os-disk") -> Path:
    _, plan = plan_remediation(rig.az(), VmRef.parse(vm), scenario)
    path = tmp_path / "plan.json"
    path.write_text(plan.dumps())
    return path


def _edit(path: Path, change: object, *, redigest: bool) -> None:
    """Edit a saved plan; ``redigest``: as an attacker would, also recompute its digest."""
    import hashlib

    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    if redigest:
        body = {k: v for k, v in data.items() if k != "digest"}
        data["digest"] = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    path.write_text(json.dumps(data))


def _inject_delete(data: dict) -> None:  # type: ignore[type-arg]
    other = data["vm_id"].replace("api-01", "web-01")
    data["steps"][3]["waves"][0].append({
        "client": "compute", "op": "virtual_machines.begin_delete", "resource_id": other, "effect": "delete",
        "summary": "snapshot", "goal": [],
        "args": {"resource_group_name": "rg-web", "vm_name": "web-01", "force_deletion": True}})


def _secret_into_tags(data: dict) -> None:  # type: ignore[type-arg]
    for step in data["steps"]:
        for wave in step["waves"]:
            for action in wave:
                if action["op"] == "virtual_machines.begin_create_or_update":
                    action["args"]["parameters"]["tags"] = {"leak": {"$secret": "env:HOME"}}


def _empty_snapshots(data: dict) -> None:  # type: ignore[type-arg]
    snap = next(s for s in data["steps"] if s["name"] == "snapshot-disks")
    snap["waves"], snap["backs_up"] = [], {}


def _bad_op(data: dict) -> None:  # type: ignore[type-arg]
    create = next(s for s in data["steps"] if s["name"] == "create-vm-from-os-disk")
    create["waves"][0][0]["op"] = "virtual_machines.begin_create_or_updat"


@pytest.mark.parametrize("redigest", [False, True], ids=["digest-kept", "digest-recomputed"])
@pytest.mark.parametrize("edit", [_inject_delete, _secret_into_tags, _empty_snapshots, _bad_op],
                         ids=["call-injected", "secret-into-tags", "snapshots-emptied", "mistyped-op"])
def test_an_edited_plan_file_is_refused_with_zero_writes(rig: Rig, tmp_path: Path, edit: object,
                                                         redigest: bool) -> None:
    rig.arm.seed("generalized-without-sysprep")
    rig.arm.seed("healthy")
    b = before(rig, "rg-demo/api-01")
    path = _saved(rig, tmp_path)
    _edit(path, edit, redigest=redigest)
    mark = rig.arm.last_request
    with pytest.raises((PlanDrifted, JournalError), match=r"does not match|was edited|outside"):
        apply_saved(rig.az(), load_plan_file(path), rig.hooks(), yes=True)
    assert rig.arm.writes(mark) == []
    assert rig.disk_contents() == b.disks and rig.nic_ids() == b.nics
    cli = rig.invoke("apply", "--plan", str(path), "--yes")
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert rig.arm.writes(mark) == []


def test_an_unedited_plan_file_applies(rig: Rig, tmp_path: Path) -> None:
    rig.arm.seed("generalized-without-sysprep")
    path = _saved(rig, tmp_path)
    outcome = apply_saved(rig.az(), load_plan_file(path), rig.hooks(), yes=True)
    assert outcome.made_calls == 9


def test_a_stale_run_is_refused_when_the_vm_was_rebuilt_under_the_same_name(rig: Rig) -> None:
    """The data-loss case: a run interrupted after its delete; someone rebuilt a VM of the same name (generalized
    again). Resuming must not delete the new VM on the strength of the old run's snapshots."""
    rig.arm.seed("generalized-without-sysprep")
    az = rig.az()
    ref = VmRef.parse("rg-demo/api-01")
    _, plan = plan_remediation(az, ref, "from-os-disk")
    # the old run: snapshots made and the VM deleted, then it died (journal says step 4 started, not done)
    from runbooks.journal import LocalStore as Store

    store = Store(rig.home)
    with store.lock(plan.vm_id, plan.run_id) as lock:
        journal = store.create(plan, lock)
        for i in range(3):
            journal.append({"event": "step-start", "index": i, "step": plan.steps[i].name})
            journal.append({"event": "step-done", "index": i, "step": plan.steps[i].name})
    for action in plan.steps[3].actions:
        az.compute.snapshots.begin_create_or_update(**action.call.args).result()
    az.compute.virtual_machines.begin_delete("rg-demo", "api-01").result()
    rig.arm.seed("generalized-without-sysprep")  # someone rebuilt it: same names, new identities; old snapshots kept
    b = before(rig, "rg-demo/api-01")
    mark = rig.arm.last_request
    with pytest.raises(StepRefused, match="stale"):
        from runbooks.remediate import resume

        resume(rig.az(), ref, rig.hooks(), yes=True)
    assert rig.arm.writes(mark) == []
    assert rig.disk_contents() == b.disks and rig.nic_ids() == b.nics


def test_the_public_ip_azure_would_delete_with_the_vm_is_kept_with_its_address(rig: Rig) -> None:
    rig.arm.seed("generalized-without-sysprep")
    net = rig.arm.network_client()
    nic = net.network_interfaces.get("rg-demo", "api-01-nic").as_dict()
    ref = nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]
    assert ref["properties"]["deleteOption"] == "Delete"  # the seed: Azure would delete it with the VM
    pip_name = ref["id"].rsplit("/", 1)[-1]
    old = net.public_ip_addresses.get("rg-demo", pip_name).as_dict()
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/api-01"), "from-os-disk")
    keep = next(s for s in plan.steps if s.name == "keep-public-ips")
    assert keep.kind == "change" and [c.op for c in keep.calls] == ["network_interfaces.begin_create_or_update"]
    assert not any(n.startswith("Azure also deletes public IP") for s in plan.steps for n in s.notes)
    remediate(az, plan, rig.hooks(), yes=True)
    new = net.public_ip_addresses.get("rg-demo", pip_name).as_dict()
    assert new["properties"]["resourceGuid"] == old["properties"]["resourceGuid"]  # the same resource
    assert new["properties"].get("ipAddress") == old["properties"].get("ipAddress")
    rebuilt = net.network_interfaces.get("rg-demo", "api-01-nic").as_dict()
    back = rebuilt["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]
    assert back["id"].lower() == ref["id"].lower() and back["properties"]["deleteOption"] == "Delete"  # as it was


def test_preflight_reads_wildcards_and_exclusions_as_azure_does() -> None:
    from runbooks.azure import Call
    from runbooks.preflight import granted, needs

    assign = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
    assert granted([{"actions": ["Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action"]}], assign)
    assert granted([{"actions": ["*"]}], "Microsoft.Compute/virtualMachines/delete")
    assert not granted([{"actions": ["Microsoft.Compute/*"], "notActions": ["Microsoft.Compute/*/delete"]}],
                       "Microsoft.Compute/virtualMachines/delete")
    delete = "Microsoft.Compute/virtualMachines/delete"
    assert granted([{"actions": ["Microsoft.Compute/*"], "notActions": ["Microsoft.Compute/*/delete"]},
                    {"actions": [delete]}], delete)  # another role assignment grants it
    sub = "/subscriptions/s/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/v/subnets/default"
    nsg = "/subscriptions/s/resourceGroups/rg-sec/providers/Microsoft.Network/networkSecurityGroups/n"
    nic = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vm-nic"
    call = Call("network", "network_interfaces.begin_create_or_update", {
        "resource_group_name": "rg", "network_interface_name": "vm-nic", "parameters": {"properties": {
            "networkSecurityGroup": {"id": nsg},
            "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": sub}}}]}}}, nic, "create", "rebuild")
    got = {(n.action, n.resource_group) for n in needs([call])}
    assert got == {("Microsoft.Network/networkInterfaces/write", "/subscriptions/s/resourceGroups/rg"),
                   ("Microsoft.Network/virtualNetworks/subnets/join/action", "/subscriptions/s/resourceGroups/rg-net"),
                   ("Microsoft.Network/networkSecurityGroups/join/action", "/subscriptions/s/resourceGroups/rg-sec")}
