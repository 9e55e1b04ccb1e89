"""Raw reads (runbooks.azure: raw_get, raw_pages and the readers built on them) against armsim with the real SDK
beside them: the same JSON as the SDK models' ``as_dict()`` (casing, read-only fields), the same api-versions, the
same errors, through the same policies (counter, pacer, retries); the sweep finds the same VMs either way; and a
job's first read of its VM imports no compute SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from remediation_helpers import Rig

from runbooks import sweep as sweep_module
from runbooks.azure import (
    activity_pages,
    get_instance_view,
    get_vm,
    image_pages,
    vm_pages,
)
from runbooks.observe import _d, _stamp, activity_since, failed_operations
from runbooks.sweep import sweep

REPO = Path(__file__).resolve().parents[2]
COMPUTE_EVENTS = "resourceProvider eq 'Microsoft.Compute'"


def without_status_times(data: Any) -> Any:
    """armsim stamps instance-view statuses with the time of the read: two reads differ by that only."""
    if isinstance(data, dict):
        return {k: without_status_times(v) for k, v in data.items()
                if not (k == "time" and "code" in data)}
    if isinstance(data, list):
        return [without_status_times(v) for v in data]
    return data


def test_a_vm_and_its_instance_view_read_raw_are_the_sdk_models_json(rig: Rig) -> None:
    rig.arm.seed("redeploy-vm")  # VMs with data disks, extensions, Linux and Windows
    az = rig.az()
    vms = [vm.as_dict() for vm in az.compute.virtual_machines.list_all()]
    assert len(vms) >= 4
    for vm in vms:
        rg, name = vm["id"].split("/")[4], vm["name"]
        for expand in ("userData", "instanceView", None):
            sdk = az.compute.virtual_machines.get(rg, name, expand=expand).as_dict()
            raw = get_vm(az, rg, name, expand)
            assert without_status_times(raw) == without_status_times(sdk)
            assert "vmId" in raw["properties"] and "provisioningState" in raw["properties"]  # read-only fields kept
            assert ("instanceView" in raw["properties"]) == (expand == "instanceView")
        sdk_view = az.compute.virtual_machines.instance_view(rg, name).as_dict()
        assert without_status_times(get_instance_view(az, rg, name)) == without_status_times(sdk_view)
        assert sdk_view["statuses"]  # something was compared


def test_paged_lists_read_raw_are_the_sdk_pages(rig: Rig) -> None:
    rig.arm.seed("fleet", vms=25, resource_groups=3, generalized_fraction=0.3, seed=5)
    rig.arm.seed("generalized-after-capture")  # a captured image, for the image list
    rig.arm.world.config.page_size = 7  # several pages: nextLink is followed
    az = rig.az()
    sdk_pages = [[vm.as_dict() for vm in page]
                 for page in az.compute.virtual_machines.list_all(status_only="true").by_page()]
    raw_pages = list(vm_pages(az, status_only=True))
    assert len(raw_pages) == len(sdk_pages) >= 4
    assert without_status_times(raw_pages) == without_status_times(sdk_pages)
    assert all(vm["properties"]["instanceView"]["statuses"] for page in raw_pages for vm in page)  # statusOnly
    assert [vm["id"] for p in vm_pages(az) for vm in p] == [vm.id for vm in az.compute.virtual_machines.list_all()]
    images = [i.as_dict() for i in az.compute.images.list()]
    assert images and [i for p in image_pages(az) for i in p] == images


def test_activity_log_read_raw_holds_every_field_of_the_sdk_model_and_gives_the_same_failures(rig: Rig) -> None:
    rig.arm.seed("quota-exceeded")
    az = rig.az()
    query = f"eventTimestamp ge '{activity_since()}' and {COMPUTE_EVENTS}"
    sdk = [_d(e) for e in az.monitor.activity_logs.list(filter=query)]
    raw = [e for page in activity_pages(az, query) for e in page]
    assert len(raw) == len(sdk) > 0 and any((e.get("status") or {}).get("value") == "Failed" for e in raw)
    # The msrest model keeps only the fields it knows (it drops ``channels``) and writes times its own way
    # (.91566Z for ARM's .915660Z); raw keeps all ARM sent, as sent: the same instants.
    def known(event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        return {k: _stamp(v) if k.endswith("Timestamp") else v for k, v in event.items() if k in fields}

    assert [known(r, s) for r, s in zip(raw, sdk, strict=True)] == [known(s, s) for s in sdk]
    assert all(set(r) - set(s) <= {"channels"} for r, s in zip(raw, sdk, strict=True))

    def failures(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**op, "time": _stamp(op["time"])} for op in failed_operations(events)]

    assert failures(raw) == failures(sdk) != []


def test_raw_reads_send_the_sdks_api_versions_and_go_through_the_connections_policies(rig: Rig) -> None:
    rig.arm.seed("healthy")
    az = rig.az()
    mark = rig.arm.last_request
    az.compute.virtual_machines.get("rg-web", "web-01")
    list(az.compute.virtual_machines.list_all(status_only="true"))
    list(az.monitor.activity_logs.list(filter=f"eventTimestamp ge '{activity_since()}'"))
    sdk_log = rig.arm.requests(mark)
    reads = az.counter.reads
    mark = rig.arm.last_request
    get_vm(az, "rg-web", "web-01")
    list(vm_pages(az, status_only=True))
    list(activity_pages(az, f"eventTimestamp ge '{activity_since()}'"))
    raw_log = rig.arm.requests(mark)
    assert az.counter.reads == reads + 3  # the connection's request counter sees them

    def versions(log: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(r["path"].lower(), json.dumps(r["query"].get("api-version"))) for r in log]

    assert versions(raw_log) == versions(sdk_log)
    assert raw_log[1]["query"].get("statusOnly") == sdk_log[1]["query"].get("statusOnly")


def test_raw_reads_fail_as_the_sdk_does(rig: Rig) -> None:
    rig.arm.seed("healthy")
    az = rig.az()
    for rg, name, code in (("rg-web", "nope-01", "ResourceNotFound"),
                           ("rg-nowhere", "web-01", "ResourceGroupNotFound")):
        with pytest.raises(ResourceNotFoundError) as sdk:
            az.compute.virtual_machines.get(rg, name)
        with pytest.raises(ResourceNotFoundError) as raw:
            get_vm(az, rg, name)
        assert raw.value.error is not None and sdk.value.error is not None
        assert (raw.value.error.code, raw.value.error.message) == (sdk.value.error.code, sdk.value.error.message)
        assert raw.value.error.code == code
    rig.arm.add_fault(method="GET", path="/virtualMachines/web-01$", action="error", status=500, times=0,
                      error={"code": "InternalServerError", "message": "boom"})
    with pytest.raises(HttpResponseError) as failed:
        get_vm(az, "rg-web", "web-01")
    assert failed.value.status_code == 500 and failed.value.error is not None
    assert failed.value.error.code == "InternalServerError"


def test_a_throttled_raw_read_is_retried_after_arms_hint_and_counted_by_the_pacer(rig: Rig) -> None:
    rig.arm.seed("healthy")
    az = rig.az()
    rig.arm.add_fault(method="GET", path="/virtualMachines/web-01$", action="error", status=429,
                      headers={"Retry-After": "1"}, error={"code": "TooManyRequests", "message": "slow down"})
    mark = rig.arm.last_request
    assert get_vm(az, "rg-web", "web-01")["name"] == "web-01"
    assert [r["status"] for r in rig.arm.requests(mark)] == [429, 200] and az.pacer.throttled == 1


@pytest.mark.parametrize("seed", ["quota-exceeded", "generalized-after-capture"])
def test_the_sweep_reports_the_same_from_raw_pages_as_from_sdk_models(rig: Rig, seed: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rig.arm.seed("fleet", vms=30, resource_groups=3, generalized_fraction=0.2, seed=9)
    rig.arm.seed(seed)
    rig.arm.world.config.page_size = 8

    def report(sdk_models: bool) -> dict[str, Any]:
        monkeypatch.setattr(sweep_module, "SDK_MODELS", sdk_models)
        d = sweep(rig.az()).to_dict()
        return {k: v for k, v in d.items() if k not in ("seconds", "requests")}

    raw, sdk = report(False), report(True)
    assert raw == sdk and raw["candidates"] >= 7 and raw["pages"] >= 4


CHILD = """
import sys
import runbooks.automation.entry
assert "runbooks.sweep" not in sys.modules and "azure.mgmt.compute" not in sys.modules
from runbooks.observe import VmRef, observe
obs = observe(runbooks.automation.entry.connect(runbooks.automation.entry.RemediateParameters(vm="rg-web/web-01")),
              VmRef.parse("rg-web/web-01"), facts={"instance-view"})
assert obs.vm["name"] == "web-01" and obs.statuses(), obs.statuses()
print(sorted(m for m in sys.modules if m.startswith("azure.mgmt.")))
"""


def test_a_jobs_first_read_of_its_vm_imports_no_compute_sdk(rig: Rig) -> None:
    rig.arm.seed("healthy")
    env = {k: v for k, v in rig.env().items() if not k.startswith("PYTHONPYCACHEPREFIX")}
    env.update(rig.arm.env(), REQUESTS_CA_BUNDLE=rig.arm.ca_bundle)
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, env=env, text=True, capture_output=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = out.stdout.strip().splitlines()[-1]
    assert "azure.mgmt.compute" not in loaded and "azure.mgmt.core" in loaded


SWEEP_CHILD = """
import sys
from runbooks.automation.entry import sweep_main
code = sweep_main(['{"remediate": false}'])
print(code, sorted(m for m in sys.modules if m.startswith("azure.mgmt.") and m.count(".") == 2))
"""


def test_a_report_mode_sweep_job_loads_no_sdk_client_module(rig: Rig) -> None:
    rig.arm.seed("fleet", vms=40, resource_groups=2, generalized_fraction=0.25, seed=4)
    rig.arm.seed("generalized-after-capture")  # a captured image: the image list is read too
    env = {**rig.env(), "REQUESTS_CA_BUNDLE": rig.arm.ca_bundle}
    mark = rig.arm.last_request
    out = subprocess.run([sys.executable, "-c", SWEEP_CHILD], cwd=REPO, env=env, text=True, capture_output=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    paths = [r["path"].lower() for r in rig.arm.requests(mark)]
    assert any(p.endswith("/images") for p in paths) and any(p.endswith("/virtualmachines") for p in paths)
    assert out.stdout.strip().splitlines()[-1] == "0 ['azure.mgmt.core']"
