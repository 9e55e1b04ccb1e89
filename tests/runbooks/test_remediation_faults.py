"""Fault matrix: every write the remediation makes, crossed with the ways ARM fails a request. The first run either
succeeds (the SDK retried) or raises a RunbookError; a re-run (resume from the journal) converges, no disk
content or NIC is lost, and the VM keeps its definition. Process kills are in test_remediation_sigkill.py."""

from __future__ import annotations

from typing import Any

import pytest
from remediation_helpers import (
    Rig,
    assert_converged,
    assert_preserved_or_untouched,
    before,
    rerun,
    run_to_completion,
    seed,
)

from runbooks.errors import RunbookError

# Each write of a remediation, as armsim sees it: (vm, method, path regex). app-01 (from-image) makes every
# kind of write; api-01 (from-os-disk) adds the rebuild of a deleted OS disk and a create that attaches it.
WRITES: dict[str, tuple[str, str, str] | tuple[str, str, str, int]] = {
    "snapshot-put": ("rg-demo/app-01", "PUT", r"/snapshots/app-01_data0-[0-9a-f]{8}-rb\w+$"),
    "vm-delete": ("rg-demo/app-01", "DELETE", r"/virtualMachines/app-01$"),
    "disk-put": ("rg-demo/app-01", "PUT", r"/disks/app-01_data0$"),
    "nic-keep-pip-put": ("rg-demo/app-01", "PUT", r"/networkInterfaces/app-01-nic$", 1),  # deleteOption → Detach
    "nic-put": ("rg-demo/app-01", "PUT", r"/networkInterfaces/app-01-nic$", 2),  # the rebuild after the delete
    "vm-put": ("rg-demo/app-01", "PUT", r"/virtualMachines/app-01$"),
    "extension-put": ("rg-demo/app-01", "PUT", r"/virtualMachines/app-01/extensions/bootstrap$"),
    "os-disk-put": ("rg-demo/api-01", "PUT", r"/disks/api-01_OsDisk$"),
    "vm-put-attach": ("rg-demo/api-01", "PUT", r"/virtualMachines/api-01$"),
}

# The ways a request fails. ``times`` > the SDK's retries would exhaust them; 2 makes the SDK's first retry
# fail as well for the status errors, so some cases reach the runbook as ApplyFailed.
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"action": "error", "status": 500, "times": 1,
            "error": {"code": "InternalServerError", "message": "Injected 500."}},
    "500-persistent": {"action": "error", "status": 500, "times": 0,
                       "error": {"code": "InternalServerError", "message": "Injected persistent 500."}},
    "429-retry-after": {"action": "error", "status": 429, "headers": {"Retry-After": "1"},
                        "error": {"code": "TooManyRequests", "message": "Injected throttling."}},
    "429-retry-after-ms": {"action": "error", "status": 429, "headers": {"retry-after-ms": "20"},
                           "error": {"code": "TooManyRequests", "message": "Injected throttling."}},
    "async-failed": {"action": "async-failed",
                     "error": {"code": "InternalExecutionError", "message": "Injected async failure."}},
    "drop-before": {"action": "drop", "when": "before"},
    "drop-after": {"action": "drop", "when": "after"},
}

# Every write crossed with every fault kind, except the slow ones (the SDK backs off for seconds before giving up on a
# persistent 500 or honouring a 1 s Retry-After): those on a representative subset of writes.
SLOW = {"500-persistent": ("vm-delete", "vm-put", "os-disk-put"),
        "429-retry-after": ("snapshot-put", "vm-delete", "vm-put", "nic-put")}
CASES = [(w, f) for w in WRITES for f in FAULTS if f not in SLOW or w in SLOW[f]]
VERIFY_TIMEOUT = 30.0  # a remediation that cannot converge fails fast instead of waiting 900 s for an agent


@pytest.mark.parametrize(("write", "fault"), CASES, ids=[f"{w}-{f}" for w, f in CASES])
def test_fault_then_rerun_converges(rig: Rig, write: str, fault: str) -> None:
    vm, method, path, *nth = WRITES[write]
    scenario = "from-image" if vm.endswith("app-01") else "from-os-disk"
    seed(rig, vm)
    b = before(rig, vm)
    rule = rig.arm.add_fault(method=method, path=path, nth=nth[0] if nth else 1, **FAULTS[fault])

    try:
        run_to_completion(rig, vm, scenario, verify_timeout=VERIFY_TIMEOUT)
        first_ok = True
    except RunbookError as e:
        first_ok = False
        assert "\n" not in str(e), "errors reaching the user are one line"
        assert_preserved_or_untouched(rig, b, scenario)
    assert rule["fired"] >= 1, f"the fault never fired: {write} is not a write of this remediation"
    if not first_ok:
        rig.arm.world.faults.clear()  # the outage is over
        rerun(rig, vm, scenario)
    else:
        assert FAULTS[fault].get("times") != 0, "a persistent failure cannot succeed"
    assert_converged(rig, b, scenario)
    # every snapshot holds its source disk's original content
    for content, source in rig.snapshot_contents().values():
        assert b.disks.get(source) == content
