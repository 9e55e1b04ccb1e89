"""The blob run store against Azurite (real azure-storage-blob over HTTPS), armsim for ARM: a remediation whose
journal, plan and lock live in a container; the bearer-token credential path; two runners on one VM (the second
refused, told who and since when); a lease renewed while its run lives; a lost lease stopping the run before its
next write; and a runner SIGKILLed after its delete, resumed "on another machine" once its lease expired."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobLeaseClient
from remediation_helpers import INVOKE, PASSWORD, REPO, Rig, assert_converged, before, kill_when, seed, wait_for
from store_helpers import ACCOUNT_KEY, LEASE, AudienceToken, Azurite, new_container

from runbooks.apply import Hooks
from runbooks.azure import Azure, Connection
from runbooks.errors import JournalError, LockHeld, LockLost
from runbooks.journal import store_from_settings, vm_key
from runbooks.observe import VmRef
from runbooks.remediate import plan_remediation, remediate, resume
from runbooks.store_blob import BlobStore

APP = "rg-demo/app-01"
ARGS = ["remediate", "--vm", APP, "--scenario", "from-image", "--yes", "--verify-timeout", "30"]


@pytest.fixture
def store(azurite: Azurite) -> BlobStore:
    return azurite.store(new_container())


def _vm_id(rig: Rig, vm: str = APP) -> str:
    return VmRef.parse(vm).vm_id(rig.sub)


def _blobs(store: BlobStore) -> dict[str, Any]:
    return {b.name: b for b in store.container.list_blobs(include=["metadata"])}


def test_a_remediation_keeps_its_plan_journal_and_lock_in_the_container(rig: Rig, store: BlobStore) -> None:
    seed(rig, APP)
    b = before(rig, APP)
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(APP), "from-image")
    remediate(az, plan, rig.hooks(), yes=True, store=store)
    assert_converged(rig, b, "from-image")

    assert not rig.home.exists(), "the blob store must not write to the local directory"
    blobs = _blobs(store)
    journal_name = f"runs/{plan.run_id}/journal.jsonl"
    assert {f"runs/{plan.run_id}/plan.json", journal_name} <= set(blobs)
    assert not [n for n in blobs if n.startswith("vms/")], "a finished run leaves no pointer"
    # the journal is an append blob, one committed block per event
    props = store.blob(journal_name).get_blob_properties()
    events = store.open(plan.run_id).events()
    assert props.blob_type == "AppendBlob" and props.append_blob_committed_block_count == len(events)
    assert events[0]["event"] == "run-start" and events[0]["host"] == socket.gethostname() and events[0]["pid"]
    assert events[-1] == {**events[-1], "event": "run-end", "status": "succeeded"}
    assert [e["event"] for e in events].count("call-intent") == [e["event"] for e in events].count("call-done")
    # the exported VM definition is in the store (the only copy while the VM is deleted)
    assert store.open(plan.run_id).plan().observation.vm == b.obs.vm
    # the lock was released (lease available, holder cleared), and no secret reached any blob
    lock = store.blob(f"locks/{next(n.split('/')[1] for n in blobs if n.startswith('locks/'))}").get_blob_properties()
    assert lock.lease.state == "available" and not lock.metadata
    for name in blobs:
        assert PASSWORD.encode() not in store.blob(name).download_blob().readall(), name


def test_the_credential_path_bearer_tokens_from_the_arm_credential(rig: Rig, azurite: Azurite,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``store_from_settings(url, container, credential)`` with the ``Azure`` object's own DefaultAzureCredential
    (armsim's managed-identity endpoint, scope https://storage.azure.com) over HTTPS; Azurite checks the tokens."""
    for name, value in rig.arm.env().items():
        monkeypatch.setenv(name, value)
    az = Azure(Connection.from_env())
    credential = az.credential
    token = credential.get_token("https://storage.azure.com/.default").token
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=" * (-len(token.split(".")[1]) % 4)))
    assert claims["aud"] == "https://storage.azure.com" and claims["iss"].startswith("https://sts.windows.net/")
    container = new_container()
    store = store_from_settings(azurite.account_url, container, credential, ca_bundle=azurite.ca_bundle)
    assert isinstance(store, BlobStore)
    seed(rig, APP)
    b = before(rig, APP)
    _, plan = plan_remediation(az, VmRef.parse(APP), "from-image")
    remediate(az, plan, rig.hooks(), yes=True, store=store)
    assert_converged(rig, b, "from-image")
    assert store.run_ids() == [plan.run_id]
    # the emulator really authenticates: a token for ARM's audience is refused, in one line
    wrong = store_from_settings(azurite.account_url, container,
                                AudienceToken("https://management.azure.com"),
                                ca_bundle=azurite.ca_bundle)
    with pytest.raises(JournalError, match=r"cannot list runs: AuthenticationFailed") as refused:
        wrong.run_ids()
    assert "\n" not in str(refused.value)


def test_a_second_runner_is_refused_and_told_who_holds_the_lock(rig: Rig, azurite: Azurite, tmp_path: Path) -> None:
    """An operator's run holds the VM (paused at its destructive step's question) when a CLI run from another
    machine, on the same store, tries the same VM: refused before any change, told run id, host, pid, user, since."""
    seed(rig, APP)
    b = before(rig, APP)
    container = new_container()
    store = azurite.store(container)
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(APP), "from-image")
    asked, go_on = threading.Event(), threading.Event()

    def confirm(question: str) -> bool:
        if "destructive" in question:
            asked.set()
            assert go_on.wait(60)
        return True

    result: dict[str, Any] = {}

    def first_runner() -> None:
        try:
            result["outcome"] = remediate(az, plan, Hooks(confirm=confirm, progress=lambda line: None), store=store)
        except BaseException as e:
            result["error"] = e

    runner = threading.Thread(target=first_runner)
    runner.start()
    try:
        assert asked.wait(60), result
        mark = rig.arm.last_request
        second = rig.invoke(*ARGS, env=rig.env(RUNBOOKS_HOME=str(tmp_path / "other-machine"), **azurite.env(container)))
        assert second.returncode == 2, second.stdout + second.stderr
        holder = (rf"another remediation of .*app-01 is running: run {plan.run_id} \(pid {os.getpid()} "
                  rf"on {re.escape(socket.gethostname())}, user [^)]+\) since \d{{4}}-\d\d-\d\dT")
        assert re.search(holder, second.stderr), second.stderr
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert rig.arm.writes(mark) == [], "the refused runner changed something"
    finally:
        go_on.set()
        runner.join(120)
    assert "error" not in result, result.get("error")
    assert_converged(rig, b, "from-image")


def test_the_lease_is_renewed_while_the_run_lives(rig: Rig, store: BlobStore) -> None:
    vm_id = _vm_id(rig)
    with store.lock(vm_id, "long-run") as lock:
        wait_for(lambda: lock.renewals >= 1, timeout=LEASE, what="a renewal by the background thread")
        lock.ensure_held()
        with pytest.raises(LockHeld, match="run long-run"):
            store.lock(vm_id, "other-run").acquire()
    # released: the next run takes it at once
    with store.lock(vm_id, "next-run"):
        assert store.holder(vm_id)["run_id"] == "next-run"  # type: ignore[index]


@pytest.mark.parametrize("how", ["broken", "taken-over"])
def test_a_lost_lease_stops_the_run_before_its_next_write(rig: Rig, store: BlobStore, how: str) -> None:
    """The lease is broken (an operator's ``az storage blob lease break``), or broken and taken by another runner,
    while the run waits at its destructive step: the run stops before the delete, with a clear error, and leaves
    its journal alone (no run-end written) so that whoever holds the lock next can resume it."""
    seed(rig, APP)
    b = before(rig, APP)
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(APP), "from-image")
    lock_blob = store.blob(f"locks/{vm_key(plan.vm_id)}")
    intruders = []

    def confirm(question: str) -> bool:
        if "destructive" in question:
            BlobLeaseClient(lock_blob).break_lease(lease_break_period=0)
            if how == "taken-over":
                intruders.append(store.lock(plan.vm_id, "intruder-run"))
                intruders[-1].acquire()
        return True

    mark = rig.arm.last_request
    try:
        code = "LeaseIsBroken" if how == "broken" else "LeaseIdMismatch"
        with pytest.raises(LockLost, match=rf"run {plan.run_id} lost the lock of .*app-01 .*{code}.* it stopped "
                                           "before its next write"):
            remediate(az, plan, Hooks(confirm=confirm, progress=lambda line: None), store=store)
        assert not [w for w in rig.arm.writes(mark) if w["method"] == "DELETE"], "the VM was deleted anyway"
        assert rig.observe(APP).vm is not None
        events = store.open(plan.run_id).events()
        assert events[-1]["event"] == "step-start" and "run-end" not in {e["event"] for e in events}
        assert store.active_run(plan.vm_id).run_id == plan.run_id  # type: ignore[union-attr]
        if how == "taken-over":
            with pytest.raises(LockHeld, match="run intruder-run"):
                resume(az, VmRef.parse(APP), rig.hooks(), yes=True, store=store)
            return
    finally:
        for intruder in intruders:
            intruder.release()
    resume(az, VmRef.parse(APP), rig.hooks(), yes=True, store=store)
    assert_converged(rig, b, "from-image")


def test_a_runner_killed_after_its_delete_is_resumed_on_another_machine(rig: Rig, azurite: Azurite,
                                                                         tmp_path: Path) -> None:
    """SIGKILL after the VM's delete took effect; the machine is gone with its directory. Until the dead runner's
    lease expires (no renewals: at most LEASE s) another machine is refused; then it resumes from the store alone."""
    seed(rig, APP)
    b = before(rig, APP)
    container = new_container()
    store = azurite.store(container)
    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    rule: dict[str, Any] = rig.arm.add_fault(method="DELETE", path=r"/virtualMachines/app-01$", nth=1, action="delay",
                                             seconds=60)
    proc = subprocess.Popen([INVOKE, *ARGS], cwd=REPO, env=rig.env(RUNBOOKS_HOME=str(machine_a),
                                                                   **azurite.env(container)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when(proc, lambda: rule["fired"] >= 1, "the VM's delete")
    killed_at = time.monotonic()
    rig.arm.world.faults.clear()
    shutil.rmtree(machine_a, ignore_errors=True)
    run_id = store.active_run(_vm_id(rig)).run_id  # type: ignore[union-attr]
    env_b = rig.env(RUNBOOKS_HOME=str(machine_b), **azurite.env(container))

    refused = rig.invoke(*ARGS, env=env_b)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"is running: run {run_id} (pid {proc.pid} on {socket.gethostname()}" in refused.stderr, refused.stderr

    wait_for(lambda: store.holder(_vm_id(rig)) is None, timeout=LEASE + 10, what="the dead runner's lease to expire")
    expired_after = time.monotonic() - killed_at
    assert expired_after <= LEASE + 2, f"lease outlived its runner by {expired_after:.1f} s"
    print(f"lease expired {expired_after:.1f} s after the SIGKILL (lease {LEASE} s)")

    again = rig.invoke(*ARGS, env=env_b)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"An unfinished run {run_id} exists" in again.stdout and "resuming" in again.stdout
    assert_converged(rig, b, "from-image")
    assert not (machine_b / "runs").exists(), "machine B must resume from the store alone"
    events = store.open(run_id).events()
    assert events[0]["event"] == "run-start" and events[0]["pid"] == str(proc.pid)
    assert events[-1]["event"] == "run-end" and events[-1]["status"] == "succeeded"
    assert store.active_run(_vm_id(rig)) is None


def test_store_errors_are_one_line_and_never_show_the_connection_string(rig: Rig, azurite: Azurite) -> None:
    seed(rig, APP)
    bad_key = azurite.connection_string.replace(ACCOUNT_KEY, "A" * 86 + "==")
    for env, expected in [
        ({"RUNBOOKS_STORE_CONNECTION_STRING": bad_key, "RUNBOOKS_STORE_CONTAINER": new_container(),
          "RUNBOOKS_STORE_CA_BUNDLE": azurite.ca_bundle},
         r"run store .*: cannot .*: (AuthenticationFailed|InvalidAuthenticationInfo)"),
        ({"RUNBOOKS_STORE_CONNECTION_STRING": "AccountKey=" + ACCOUNT_KEY + ";nonsense",
          "RUNBOOKS_STORE_CONTAINER": new_container()}, r"RUNBOOKS_STORE_CONNECTION_STRING is not a storage"),
        ({**azurite.env(new_container()), "RUNBOOKS_STORE_LEASE_SECONDS": "5"}, r"lease duration must be 15-60"),
    ]:
        mark = rig.arm.last_request
        done = rig.invoke(*ARGS, env=rig.env(**env))
        assert done.returncode == 2, done.stdout + done.stderr
        assert re.search(expected, done.stderr), done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert ACCOUNT_KEY not in done.stdout + done.stderr and "A" * 86 not in done.stdout + done.stderr
        assert rig.arm.writes(mark) == []


def test_a_stale_run_in_the_blob_store_is_refused_by_an_unattended_sweep(rig: Rig, store: BlobStore) -> None:
    """The issue's data-loss case under `sweep --remediate` with the blob store: an old run interrupted after its
    delete, and a VM of the same name rebuilt (and generalized) since. The sweep must not resume the old run
    against the new VM: it is refused as stale, with zero writes, and the new VM and its disks are untouched."""
    from runbooks.sweep import FAILED, sweep

    rig.arm.seed("generalized-without-sysprep")
    az = rig.az()
    ref = VmRef.parse("rg-demo/api-01")
    _, plan = plan_remediation(az, ref, "from-os-disk")
    with store.lock(plan.vm_id, plan.run_id) as lock:
        journal = store.create(plan, lock)
        for i, step in enumerate(plan.steps[:5]):  # manual … snapshots, keep-public-ips done; the delete started
            journal.append({"event": "step-start", "index": i, "step": step.name})
            journal.append({"event": "step-done", "index": i, "step": step.name})
        journal.append({"event": "step-start", "index": 5, "step": plan.steps[5].name})
    for action in next(s for s in plan.steps if s.name == "snapshot-disks").actions:
        az.compute.snapshots.begin_create_or_update(**action.call.args).result()
    az.compute.virtual_machines.begin_delete("rg-demo", "api-01").result()
    rig.arm.seed("generalized-without-sysprep")  # rebuilt under the same names: new vmId, new disk uniqueIds
    b = before(rig, "rg-demo/api-01")
    mark = rig.arm.last_request
    report = sweep(rig.az(), remediate=True, prefer="from-os-disk", store=store)
    item = next(i for i in report.items if i.name == "api-01")
    assert item.result == FAILED and "is stale" in item.detail, item.detail
    assert "runs.abandon" in item.detail
    assert rig.arm.writes(mark) == []
    assert rig.disk_contents() == b.disks and rig.nic_ids() == b.nics
