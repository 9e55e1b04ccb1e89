"""Helpers for the remediation suite: a ``Rig`` (one armsim world + one RUNBOOKS_HOME), what the world
holds (disk contents, NICs, VM definitions) and the "nothing lost, everything kept" assertions."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from armsim import ArmSim
from runbooks.apply import Hooks, Outcome
from runbooks.azure import Azure, Connection
from runbooks.observe import Observation, VmRef, observe
from runbooks.remediate import pending_run, plan_remediation, remediate, resume

REPO = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).with_name("invoke"))
# Distinctive enough to find in any byte stream; long enough that it cannot match by accident.
PASSWORD = "Rb-Sekret-7fQ2x9Lk-NEVER-LOG!"

SEEDS = {
    "rg-demo/app-01": ("generalized-after-capture", "from-image"),
    "rg-demo/api-01": ("generalized-without-sysprep", "from-os-disk"),
}


@dataclass
class Rig:
    """One test's armsim world and runbooks home."""

    arm: ArmSim
    home: Path
    progress: list[str] = field(default_factory=list)

    @property
    def sub(self) -> str:
        return self.arm.subscription_id

    def az(self) -> Azure:
        # A VM PATCH answers 200 with no polling hint, as Azure's does; azure-core then waits its default 30 s
        # between polls. Tests poll such an operation every 0.1 s instead (armsim's hints are honoured as ever).
        return Azure(Connection(self.sub, self.arm.endpoint, self.arm.ca_bundle, polling_interval=0.1),
                     credential=self.arm.credential())

    def hooks(self, answer: bool = True, *, approve_plan: bool = True) -> Hooks:
        """``answer``: to each step's question; ``approve_plan``: to the one before the first write."""
        return Hooks(confirm=lambda q: approve_plan if q.startswith("Apply this plan") else answer,
                     progress=self.progress.append)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a CLI subprocess (armsim stays in the test process)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_"))}
        env.update(self.arm.env(), RUNBOOKS_HOME=str(self.home), RUNBOOKS_ADMIN_PASSWORD=PASSWORD,
                   PYTHONUNBUFFERED="1", RUNBOOKS_POLL_INTERVAL_S="0.1", RUNBOOKS_CAPACITY_RETRY_PAUSE_S="0")
        env.update(extra)
        return env

    def invoke(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
               stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
        return subprocess.run([INVOKE, *args], cwd=REPO, env=env if env is not None else self.env(),
                              stdin=stdin, capture_output=True, text=True, timeout=timeout)

    # --- the world, as armsim knows it (hidden facts included) ------------------------------------
    def disk_contents(self) -> dict[str, str]:
        with self.arm.world.lock:
            return {k: d.content for k, d in self.arm.world.sub(self.sub).compute.disks.items()}

    def snapshot_contents(self) -> dict[str, tuple[str, str]]:
        """lower snapshot id → (content, lower source disk id)."""
        with self.arm.world.lock:
            return {k: (s.content, str(s.creation_data.get("sourceResourceId", "")).lower())
                    for k, s in self.arm.world.sub(self.sub).compute.snapshots.items()}

    def nic_ids(self) -> set[str]:
        with self.arm.world.lock:
            return set(self.arm.world.sub(self.sub).network.nics)

    def observe(self, vm: str) -> Observation:
        return observe(self.az(), VmRef.parse(vm))


def seed(rig: Rig, vm: str) -> None:
    rig.arm.seed(SEEDS[vm][0])


@dataclass
class Before:
    """What the world held before a remediation: the evidence every later assertion compares against."""

    vm: str
    obs: Observation
    disks: dict[str, str]
    nics: set[str]


def before(rig: Rig, vm: str) -> Before:
    return Before(vm, rig.observe(vm), rig.disk_contents(), rig.nic_ids())


def run_to_completion(rig: Rig, vm: str, scenario: str | None = None, **kw: Any) -> Outcome:
    """Plan and apply; the scenario defaults to the one the seed is known for (both fit app-01)."""
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse(vm), scenario or SEEDS.get(vm, (None, None))[1], **kw)
    return remediate(az, plan, rig.hooks(), yes=True)


def rerun(rig: Rig, vm: str, scenario: str | None = None) -> Outcome:
    """What an operator does after a failure: resume the pending run, else remediate again."""
    az = rig.az()
    ref = VmRef.parse(vm)
    if pending_run(az, ref) is not None:
        return resume(az, ref, rig.hooks(), yes=True)
    obs = rig.observe(vm)
    if not obs.generalized:  # the failed run got as far as a healthy VM: nothing left to do
        raise AssertionError(f"{vm} has no pending run but is not generalized either")
    return run_to_completion(rig, vm, scenario)


# --- "everything kept" ----------------------------------------------------------------------------
def _lower_id(ref: Any) -> str:
    return str((ref or {}).get("id", "")).lower()


def kept_definition(obs: Observation) -> dict[str, Any]:
    """The parts of a VM's definition a remediation must carry over unchanged."""
    vm = copy.deepcopy(obs.vm or {})
    props = vm.get("properties", {})
    sp = props.get("storageProfile", {})
    return {
        "location": vm.get("location"), "zones": vm.get("zones"), "tags": vm.get("tags"), "plan": vm.get("plan"),
        "identity_type": (vm.get("identity") or {}).get("type"),
        "user_assigned": sorted((vm.get("identity") or {}).get("userAssignedIdentities") or {}),
        **{k: props.get(k) for k in ("hardwareProfile", "userData", "diagnosticsProfile", "securityProfile",
                                     "licenseType", "priority", "evictionPolicy", "billingProfile",
                                     "additionalCapabilities", "availabilitySet", "proximityPlacementGroup")},
        "nics": [(_lower_id(n), (n.get("properties") or {}).get("primary"),
                  (n.get("properties") or {}).get("deleteOption"))
                 for n in props.get("networkProfile", {}).get("networkInterfaces", [])],
        "data_disks": sorted((d.get("lun"), _lower_id(d.get("managedDisk")), d.get("name"), d.get("caching"),
                              d.get("deleteOption"), bool(d.get("writeAcceleratorEnabled")))
                             for d in sp.get("dataDisks", [])),
        "os_disk": {k: sp.get("osDisk", {}).get(k) for k in ("caching", "deleteOption", "osType")},
        "extensions": sorted((e.get("name"), {k: (e.get("properties") or {}).get(k)
                                              for k in ("publisher", "type", "typeHandlerVersion", "settings",
                                                        "autoUpgradeMinorVersion")})
                             for e in obs.extensions),
        "computer_name": (props.get("osProfile") or {}).get("computerName"),
        "admin_username": (props.get("osProfile") or {}).get("adminUsername"),
    }


def assert_converged(rig: Rig, b: Before, scenario: str) -> Observation:
    """The VM is healthy, kept its definition, and no disk content or NIC was lost."""
    now = rig.observe(b.vm)
    assert now.vm is not None, f"{b.vm} does not exist"
    assert not now.generalized and now.power_state == "running", now.statuses()
    assert now.props.get("provisioningState") == "Succeeded"
    agent = (now.instance_view.get("vmAgent") or {}).get("statuses") or [{}]
    assert agent[0].get("displayStatus") == "Ready"
    want, have = kept_definition(b.obs), kept_definition(now)
    if scenario == "from-os-disk":
        old_os, new_os = b.obs.props["storageProfile"]["osDisk"], now.props["storageProfile"]["osDisk"]
        assert _lower_id(new_os.get("managedDisk")) == _lower_id(old_os.get("managedDisk"))
        # what must change: a VM built on an attached disk has no osProfile (the accounts live in the guest)
        assert "osProfile" not in now.props
        for key in ("computer_name", "admin_username"):
            want.pop(key)
            have.pop(key)
    assert have == want
    # no NIC lost (same ids, and the VM holds them), no disk content lost
    assert b.nics <= rig.nic_ids()
    assert_no_content_lost(rig, b, scenario)
    return now


def assert_no_content_lost(rig: Rig, b: Before, scenario: str) -> None:
    """Each original disk's content is still on a disk of the same id (data disks; the OS disk in
    from-os-disk) or, for a disk Azure deleted and the plan did not rebuild, in a complete snapshot."""
    disks_now, snaps = rig.disk_contents(), rig.snapshot_contents()
    entries = b.obs.disk_entries()
    os_id = _lower_id(entries[0].get("managedDisk"))
    for disk_id, content in b.disks.items():
        if disk_id not in {_lower_id(e.get("managedDisk")) for e in entries}:
            continue  # not this VM's disk
        snap_contents = {c for c, src in snaps.values() if src == disk_id}
        if disk_id == os_id and scenario == "from-image":
            assert disks_now.get(disk_id) == content or content in snap_contents, f"OS disk {disk_id} content lost"
            continue
        assert disks_now.get(disk_id) == content, f"disk {disk_id} content lost or changed"


def assert_preserved_or_untouched(rig: Rig, b: Before, scenario: str) -> None:
    """After any failure: whatever state the world is in, no disk content and no NIC may be gone
    unless a snapshot (content) or the journal (NIC definition, rebuilt on re-run) holds it."""
    disks_now, snaps = rig.disk_contents(), rig.snapshot_contents()
    snap_contents = {c for c, _ in snaps.values()}
    for disk_id in (_lower_id(e.get("managedDisk")) for e in b.obs.disk_entries()):
        content = b.disks[disk_id]
        assert disks_now.get(disk_id) == content or content in snap_contents, f"content of {disk_id} lost"


def wait_for(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def kill_when(proc: subprocess.Popen[str], fired: Any, what: str) -> str:
    """SIGKILL ``proc`` once ``fired()`` holds (a fault rule reached); its stderr. Fails if it ended first."""
    try:
        wait_for(lambda: fired() or proc.poll() is not None, timeout=60, what=what)
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err
    return err
