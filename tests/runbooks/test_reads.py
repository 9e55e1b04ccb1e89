"""What a remediation reads, pinned on armsim's request log (issue 14, "Speed, measured honestly"): no poll before
ARM's first Retry-After, no poll before an operation of a known kind can have ended, no GET on a POST action's
Location, no resource read twice when nothing can have changed it, a verification that reads once what its
conditions need, and independent steps side by side. Counts, not timings: each assertion fails on the reads the
engine made before."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest
from remediation_helpers import Rig

from runbooks.apply import Hooks, Reality, runs_beside
from runbooks.azure import (
    DURATIONS_FILE,
    Call,
    duration_memory,
    finish,
    operation_kind,
    operation_seconds,
    start_call,
)
from runbooks.journal import RunJournal, store_from_env
from runbooks.observe import VmRef
from runbooks.remediate import plan_remediation, remediate

WEB = "rg-redeploy/web-01"
APP = "rg-demo/app-01"


def _is_poll(path: str) -> bool:
    """An operation status URL (Compute's and Network's ``…/operations/ID``, disks' ``…/DiskOperations/ID``)."""
    return re.search(r"/(disk)?operations/[^/]+$", path.lower()) is not None


def _status_polls(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in log if r["kind"] == "read" and _is_poll(r["path"])]


def _redeploy(rig: Rig) -> list[dict[str, Any]]:
    """One redeploy of web-01 through the engine's own call path; the requests it made."""
    vm_id = f"/subscriptions/{rig.sub}/resourceGroups/rg-redeploy/providers/Microsoft.Compute/virtualMachines/web-01"
    call = Call("compute", "virtual_machines.begin_redeploy", {"resource_group_name": "rg-redeploy",
                                                                "vm_name": "web-01"}, vm_id, "update", "redeploy")
    mark, az = rig.arm.last_request, rig.az()
    finish(start_call(az, call), call)
    return rig.arm.requests(mark)


def _marked_hooks(rig: Rig, marks: list[tuple[int, str]]) -> Hooks:
    """Hooks that note, with each progress line, the request log's position when it was said."""
    return Hooks(confirm=lambda q: True, progress=lambda line: marks.append((rig.arm.last_request, line)))


def _run(rig: Rig, vm: str, scenario: str) -> tuple[list[dict[str, Any]], list[tuple[int, str]], Any]:
    """Plan (not logged) and apply ``scenario``; the requests of the apply and the progress lines, marked."""
    _, plan = plan_remediation(rig.az(), VmRef.parse(vm), scenario)
    marks: list[tuple[int, str]] = []
    mark = rig.arm.last_request
    remediate(rig.az(), plan, _marked_hooks(rig, marks), yes=True)
    return rig.arm.requests(mark), marks, plan


def _seq_of(marks: list[tuple[int, str]], prefix: str) -> int:
    return next(seq for seq, line in marks if line.startswith(prefix))


def test_no_poll_before_the_first_hint_and_no_final_get_of_an_action(rig: Rig) -> None:
    """armsim's exact hint says when the redeploy ends: the poller waits for it, polls once, and does not GET the
    Location of an action whose answer nobody reads (azure-core alone: a poll at once, one after the hint, the
    Location GET)."""
    rig.arm.seed("redeploy-vm")
    log = _redeploy(rig)
    post = next(r for r in log if r["method"] == "POST")
    polls = _status_polls(log)
    assert len(polls) == 1, [r["path"] for r in polls]
    assert polls[0]["start"] >= post["end"]
    assert not [r for r in log if r["kind"] == "read" and "monitor=true" in json.dumps(r["query"])]
    assert len([r for r in log if r["kind"] == "read"]) == 1


def test_a_kind_seen_once_is_not_polled_before_it_can_have_ended(rig: Rig) -> None:
    """Under Azure-like hints (Compute's fixed 10 s, scaled) a redeploy of 180 s takes many polls the first time;
    the second, on a new connection of the same home, one: the first duration was learnt from the operation
    status (startTime/endTime) and kept in RUNBOOKS_HOME."""
    rig.arm.world.config.latency_scale = 0.005
    rig.arm.world.config.retry_after = "azure"
    rig.arm.seed("redeploy-vm")
    rig.home.mkdir(parents=True, exist_ok=True)
    first = _status_polls(_redeploy(rig))
    assert len(first) >= 5
    kinds = json.loads((rig.home / DURATIONS_FILE).read_text())
    learnt = {k: v for scope in kinds.values() for k, v in scope.items()}
    assert learnt["post microsoft.compute/virtualmachines/redeploy"] == duration_memory(rig.az().conn).expected(
        "post microsoft.compute/virtualmachines/redeploy")
    assert 0.8 <= learnt["post microsoft.compute/virtualmachines/redeploy"] <= 1.0  # 180 s at scale 0.005
    second = _status_polls(_redeploy(rig))
    assert len(second) == 1


def test_redeploy_remediation_reads(rig: Rig) -> None:
    """The redeploy under exact hints: the guard's read of the VM, one poll, the goal check, one verification
    read (its waiting condition reads what every condition reads) and the fallout's NIC and public IP."""
    rig.arm.seed("redeploy-vm")
    log, marks, _ = _run(rig, WEB, "redeploy")
    reads = [r for r in log if r["kind"] == "read"]
    verifying = _seq_of(marks, "verify:")
    polls_in_verify = [r for r in reads if r["seq"] > verifying and r["path"].lower().endswith("/web-01")]
    assert len(_status_polls(log)) == 1
    assert len(polls_in_verify) >= 1
    # permissions, the VM, its NIC and public IP before (identity), one poll, the VM after, the verification's polls
    # and its NIC and public IP (nics-as-before compares addresses) once: the last full pass carries them
    assert len(reads) <= 6 + len(polls_in_verify) + 2, [(r["method"], r["path"]) for r in reads]
    assert {r["path"].rsplit("/", 2)[-2].lower() for r in reads if r["seq"] > verifying} <= {
        "virtualmachines", "networkinterfaces", "publicipaddresses"}


def test_a_rebuild_reads_nothing_twice_and_nothing_it_was_told(rig: Rig) -> None:
    """A generalized VM rebuilt from its image: no snapshot is looked for before the run made it (its name is the
    run's own), no resource is read again when nothing was written since (the backup guard's read of each snapshot
    right before the delete aside), and the deleted VM is not read again (its delete said it is gone)."""
    rig.arm.seed("generalized-after-capture")
    log, marks, plan = _run(rig, APP, "from-image")
    verifying = _seq_of(marks, "verify:")
    apply_log = [r for r in log if r["seq"] < verifying]
    snapshots = [r for r in apply_log if "/snapshots/" in r["path"].lower() and r["kind"] == "read"]
    assert not [r for r in snapshots if r["status"] == 404], "a snapshot named by this run was looked for"
    made = {s.rsplit("/", 1)[-1].lower() for s in plan.snapshots}
    backups = {disk: snap for s in plan.steps for disk, snap in s.backs_up.items()}
    guarded = {backups[d.lower()].rsplit("/", 1)[-1].lower() for s in plan.steps for d in s.deletes
               if d.lower() in backups}
    assert guarded and guarded < made  # the data disk with deleteOption Detach is not deleted with the VM
    for name in made:  # the poller's final GET; for a deleted disk's, the backup guard's read right before the delete
        assert len([r for r in snapshots if r["path"].lower().endswith("/" + name)]) == 1 + (name in guarded), name
    last: dict[str, str] = {}
    for r in apply_log:  # a resource read twice with no write anywhere in between
        key = r["path"].lower() + json.dumps(r["query"], sort_keys=True)
        if r["kind"] != "read":
            last.clear()
            continue
        if _is_poll(r["path"]) or "/snapshots/" in r["path"].lower():  # the guard reads backups on purpose
            continue
        assert last.get(key) != "read", f"{r['path']} read twice with nothing written in between"
        last[key] = "read"
    verification = [r for r in log if r["seq"] > verifying and r["kind"] == "read"]
    assert [r["path"].rsplit("/", 2)[-2].lower() for r in verification] == [
        "virtualmachines", "networkinterfaces", "publicipaddresses"]  # one poll, then the fallout's NIC and IP
    vm_reads_after_delete = [r for r in apply_log if r["kind"] == "read" and r["status"] == 404
                             and r["path"].lower().endswith("/virtualmachines/app-01")]
    assert vm_reads_after_delete == []
    assert len([r for r in log if r["kind"] == "read"]) <= 40


def test_independent_rebuilds_run_side_by_side(rig: Rig) -> None:
    """The NIC is rebuilt while the data disk is (neither names the other), and the public IP kept while the disks
    are snapshotted; the journal records each step's start and end; destructive steps never run beside another."""
    rig.arm.world.config.latency_scale = 0.01  # the disk's rebuild takes 0.1 s: time enough to start the NIC's
    rig.arm.seed("generalized-after-capture")
    log, _, plan = _run(rig, APP, "from-image")
    names = [s.name for s in plan.steps]
    disks, nics = names.index("rebuild-deleted-disks"), names.index("rebuild-deleted-nics")
    assert nics == disks + 1 and runs_beside(plan, disks, set())
    assert runs_beside(plan, names.index("snapshot-disks"), set())
    assert not any(runs_beside(plan, i, set()) for i, s in enumerate(plan.steps)
                   if s.destructive or (i + 1 < len(plan.steps) and plan.steps[i + 1].destructive))
    disk_put = next(r for r in log if r["method"] == "PUT" and "/disks/" in r["path"].lower())
    nic_put = next(r for r in log if r["method"] == "PUT" and r["status"] == 201
                   and "/networkinterfaces/" in r["path"].lower())
    disk_polls = [r for r in _status_polls(log) if "/diskoperations/" in r["path"].lower()
                  and r["seq"] > disk_put["seq"]]
    assert disk_polls and nic_put["seq"] < disk_polls[-1]["seq"], "the NIC was rebuilt only after the disk"
    journal: RunJournal = store_from_env("").open(plan.run_id)
    events = [(e["event"], e.get("index")) for e in journal.events() if e.get("event") in ("step-start", "step-done")]
    assert events.index(("step-start", nics)) < events.index(("step-done", disks))
    assert ("step-done", nics) in events and ("step-done", disks) in events


def test_a_learnt_duration_never_keeps_the_poller_silent_longer_than_the_hint_cap(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kind once seen taking long (here: remembered as 100 s) does not silence the next poller for that long:
    it polls again every RUNBOOKS_MAX_RETRY_AFTER_S (here 0.05 s) until the operation ends."""
    monkeypatch.setenv("RUNBOOKS_MAX_RETRY_AFTER_S", "0.05")
    rig.arm.world.config.latency_scale = 0.002  # the redeploy takes 0.36 s
    rig.arm.world.config.retry_after = "none"
    rig.arm.seed("redeploy-vm")
    duration_memory(rig.az().conn).learn("post microsoft.compute/virtualmachines/redeploy", 100.0)
    polls = _status_polls(_redeploy(rig))
    assert len(polls) >= 3


def test_a_call_forgets_what_it_may_change() -> None:
    """What the run knows survives a call only where the call cannot have changed it: a disk or snapshot write
    changes itself, a NIC's its public IPs too, an extension's its VM (it may restart it), a VM's anything (its
    delete takes disks and NICs with it)."""
    base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft."
    vm, disk, snap = f"{base}Compute/virtualMachines/vm", f"{base}Compute/disks/d", f"{base}Compute/snapshots/s"
    nic, pip, ext = f"{base}Network/networkInterfaces/n", f"{base}Network/publicIPAddresses/p", f"{vm}/extensions/e"
    everything = [vm, disk, snap, nic, pip, ext]

    def left_after(target: str) -> set[str]:
        reality = Reality(cast(Any, None), set(), known={r.lower(): {"exists": True} for r in everything})
        reality.forget(Call("compute", "x.begin_create_or_update", {}, target, "create", "write"))
        return {k for k in everything if k.lower() in reality.known}

    assert left_after(disk) == {vm, snap, nic, pip, ext}
    assert left_after(snap) == {vm, disk, nic, pip, ext}
    assert left_after(nic) == {vm, disk, snap, ext}
    assert left_after(ext) == {disk, snap, nic, pip}
    assert left_after(vm) == set()


def test_an_operation_lasts_what_compute_says_it_lasted() -> None:
    """Compute's operation status carries startTime and endTime, with 6 or 7 fraction digits (as recorded from real
    ARM by the SDK's tests: ../shared/azure-recordings/compute_generalize_capture_api-2019-07-01.excerpt.json);
    what a poller learns is their difference, not when it happened to look."""
    took = operation_seconds("2019-10-22T05:21:28.677421+00:00", "2019-10-22T05:22:09.4759733+00:00")
    assert took is not None and abs(took - 40.798552) < 1e-6
    assert operation_seconds("2026-12-06T22:00:00Z", "2026-12-06T22:01:30.5Z") == 90.5
    assert operation_seconds(None, "2026-12-06T22:01:30Z") is None
    assert operation_kind("PUT", "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/"
                          "Microsoft.Compute/virtualMachines/vm/extensions/e?api-version=2024-07-01") == \
        "put microsoft.compute/virtualmachines/extensions"
    assert operation_kind("POST", "https://h/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
                          "virtualMachines/vm/redeploy") == "post microsoft.compute/virtualmachines/redeploy"


def test_a_wait_learnt_from_one_slow_operation_comes_down_again(rig: Rig) -> None:
    """Network's operation status says nothing of when it ended: an operation found done at the first poll after
    the learnt wait may be shorter still, so the expectation drops by a quarter each time (it never sticks)."""
    from runbooks.azure import probe_lower

    assert probe_lower(6.0, 1, 6.1) == 4.5 and probe_lower(6.0, 2, 9.0) == 9.0 and probe_lower(None, 1, 3.0) == 3.0
    rig.arm.seed("redeploy-vm")
    az = rig.az()
    kind = "put microsoft.network/networkinterfaces"
    memory = duration_memory(az.conn)
    memory.learn(kind, 0.8)  # once, a NIC write took 0.8 s; armsim ends these in milliseconds
    nic = rig.arm.network_client(retry_total=0).network_interfaces.get("rg-redeploy", "web-01-nic")
    call = Call("network", "network_interfaces.begin_create_or_update",
                {"resource_group_name": "rg-redeploy", "network_interface_name": "web-01-nic", "parameters": nic},
                str(nic.id), "update", "tag NIC web-01-nic")
    seen = []
    for _ in range(3):
        finish(start_call(az, call), call)
        seen.append(memory.expected(kind))
    assert seen == pytest.approx([0.6, 0.45, 0.3375])


def test_the_durations_file_keeps_every_writer_and_ignores_garbage(tmp_path: Any) -> None:
    """Two processes learning at once merge in turn (none of their kinds is lost); a value that is not a finite
    positive number (a hand-edited ``Infinity``) is ignored rather than waited for."""
    import threading

    from runbooks.azure import DurationMemory

    path = tmp_path / DURATIONS_FILE
    path.write_text('{"s": {"put a/b": Infinity, "put c/d": -1, "put e/f": 2.5}}')
    assert DurationMemory(path, "s").expected("put a/b") is None
    assert DurationMemory(path, "s").expected("put e/f") == 2.5
    writers = [DurationMemory(path, "s") for _ in range(2)]  # as two processes would hold them

    def learn(n: int) -> None:
        for k in range(60):
            writers[n].learn(f"put w{n}/k{k}", 1.0 + k)

    threads = [threading.Thread(target=learn, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kept = json.loads(path.read_text())["s"]
    assert {f"put w{n}/k{k}" for n in range(2) for k in range(60)} <= set(kept)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_step_beside_a_failed_one_starts_no_further_call(tmp_path: Any) -> None:
    """Two steps side by side share one journal: once the first fails or is interrupted, the second is refused
    before its next call (the lock check before each call-intent), while the first's own thread still writes."""
    import threading

    from runbooks.apply import _SerialJournal
    from runbooks.errors import StepRefused

    class Journal:
        lock = None

        def ensure_held(self) -> None:
            pass

    serial = _SerialJournal(cast(RunJournal, Journal()))
    outcome: list[str] = []

    def second() -> None:
        try:
            serial.ensure_held()
            outcome.append("held")
        except StepRefused as e:
            outcome.append(str(e))

    first = threading.Thread(target=second)
    first.start()
    first.join()
    serial.stopping.set()
    then = threading.Thread(target=second)
    then.start()
    then.join()
    serial.ensure_held()  # the failing step's own thread is not refused by it
    assert outcome[0] == "held" and outcome[1].startswith("stopped before its next write"), outcome


def test_ctrl_c_while_the_step_beside_still_runs_stops_its_next_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first step has ended; Ctrl-C comes while the second, in its thread, still has calls to start: it
    starts none of them (each call's lock check refuses), and the interrupt reaches the run."""
    import signal
    import time

    from runbooks import apply

    class Journal:
        lock = None

        def ensure_held(self) -> None:
            pass

        def append(self, event: dict[str, Any]) -> None:
            pass

    started_after: list[float] = []
    interrupted_at: list[float] = []

    def fake_change(az: Any, plan: Any, i: int, step: Any, journal: Any, *rest: Any, **kw: Any) -> None:
        if i == 0:
            return  # the first step ends at once
        for _ in range(40):  # the second: a call every 0.05 s, each after the lock check
            journal.ensure_held()
            started_after.append(time.monotonic())
            time.sleep(0.05)

    def interrupt(*_: Any) -> None:
        interrupted_at.append(time.monotonic())
        raise KeyboardInterrupt

    monkeypatch.setattr(apply, "_apply_change", fake_change)
    plan = type("P", (), {"steps": [type("S", (), {"name": n, "summary": n})() for n in ("a", "b")]})()
    hooks = Hooks(confirm=lambda q: True, progress=lambda line: None)
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            apply._apply_beside(None, plan, 0, cast(RunJournal, Journal()), hooks, None, yes=True)  # type: ignore
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert interrupted_at and len(started_after) < 40
    assert not [t for t in started_after if t > interrupted_at[0] + 0.01]  # nothing started after Ctrl-C
