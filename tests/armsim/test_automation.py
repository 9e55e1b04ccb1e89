"""Microsoft.Automation in armsim through the real azure-mgmt-automation 2.0.0 client over HTTPS: the deploy
order of azure-automation.md §9, job schedule conflicts, package imports, and jobs run by the Python 3.10
sandbox (streams, exit status, time limit, stop, queueing, managed identity)."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from armsim_env import Env, error_body
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.automation import AutomationClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from armsim import ArmSim
from armsim.app import App
from armsim.automation.sandbox import (
    FAIR_SHARE_EXCEPTION,
    NO_PYTHON,
    classify,
    find_python,
    fire_due_schedules,
    wheel_problem,
)
from armsim.http import ArmRequest
from armsim.identity import make_token
from armsim.state import World

RG, AA, RE = "rg-auto", "aa1", "Python-3_10-Custom"
LOCATION = "eastus"
UAMI = ("/subscriptions/00000000-0000-0000-0000-00000000a2a1/resourceGroups/rg-id/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/sweeper")
needs_python310 = pytest.mark.skipif(find_python() is None, reason="no Python 3.10 interpreter (python3.10 on PATH "
                                     "or under pyenv) to run Automation jobs")


# --- helpers -------------------------------------------------------------------------------------------------
def make_wheel(directory: Path, dist: str, files: dict[str, str], *, version: str = "1.0",
               tag: str = "py3-none-any") -> Path:
    """A minimal wheel (module files + dist-info) with the given filename tag."""
    path = directory / f"{dist}-{version}-{tag}.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class WheelServer:
    """A local http.server over a directory, standing in for PyPI / blob storage behind contentLink."""

    def __init__(self, directory: Path, tls: ssl.SSLContext | None = None) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.dir = directory
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: Path) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}/{path.name}"

    def link(self, path: Path, digest: str | None = None) -> dict[str, Any]:
        return {"uri": self.url(path), "contentHash": {"algorithm": "SHA256", "value": digest or sha256(path)}}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WheelServer]:
    directory = tmp_path_factory.mktemp("wheelhouse")
    make_wheel(directory, "greet", {"greet.py": "def hello(who):\n    return f'hello {who}'\n"})
    server = WheelServer(directory)
    yield server
    server.close()


@pytest.fixture
def aa(arm: ArmSim, env: Env) -> AutomationClient:
    """A client plus resource group ``rg-auto`` with account ``aa1`` (system + one user-assigned identity)
    and the Python 3.10 runtime environment ``Python-3_10-Custom``."""
    env.rg(RG)
    client = arm.automation_client(retry_total=0)
    client.automation_account.create_or_update(RG, AA, {
        "location": LOCATION,
        "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {UAMI: {}}},
        "properties": {"sku": {"name": "Basic"}, "publicNetworkAccess": True}})
    client.runtime_environments.create(RG, AA, RE, {
        "location": LOCATION, "properties": {"runtime": {"language": "Python", "version": "3.10"}}})
    return client


def wait_package(client: AutomationClient, name: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        pkg = client.package.get(RG, AA, RE, name)
        if pkg.properties.provisioning_state != "Creating" or time.monotonic() > deadline:
            return pkg
        time.sleep(0.02)


def import_package(client: AutomationClient, name: str, link: dict[str, Any]) -> Any:
    created = client.package.create_or_update(RG, AA, RE, name, {"properties": {"contentLink": link}})
    assert created.properties.provisioning_state == "Creating"
    return wait_package(client, name)


def publish(client: AutomationClient, name: str, script: str, *, log_verbose: bool = False,
            runtime_environment: str = RE) -> None:
    client.runbook.create_or_update(RG, AA, name, {"location": LOCATION, "properties": {
        "runbookType": "Python", "runtimeEnvironment": runtime_environment, "logVerbose": log_verbose,
        "logProgress": False, "draft": {}}})
    client.runbook_draft.begin_replace_content(RG, AA, name, script).result()
    client.runbook.begin_publish(RG, AA, name).result()


def start_job(client: AutomationClient, runbook: str, parameters: dict[str, str] | None = None) -> str:
    name = f"job-{time.monotonic_ns()}"
    job = client.job.create(RG, AA, name, {"properties": {"runbook": {"name": runbook},
                                                          "parameters": parameters or {}, "runOn": ""}})
    assert job.properties.status == "New" and job.properties.provisioning_state == "Processing"
    return name


def run_job(arm: ArmSim, client: AutomationClient, runbook: str, parameters: dict[str, str] | None = None,
            timeout: float = 30.0) -> tuple[Any, list[tuple[str, str]]]:
    """Start a job, wait for its end; the job model and its (streamType, streamText) records."""
    name = start_job(client, runbook, parameters)
    arm.wait_job(RG, AA, name, timeout)
    return client.job.get(RG, AA, name), streams(client, name)


def streams(client: AutomationClient, job: str) -> list[tuple[str, str]]:
    out = []
    for s in client.job_stream.list_by_job(RG, AA, job):
        full = client.job_stream.get(RG, AA, job, s.properties.job_stream_id)
        kind = full.properties.stream_type
        out.append((str(getattr(kind, "value", kind)), str(full.properties.stream_text)))
    return out


def wait_status(client: AutomationClient, job: str, status: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while client.job.get(RG, AA, job).properties.status != status:
        assert time.monotonic() < deadline, f"job {job} never reached {status}"
        time.sleep(0.05)


def jwt_claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


# --- control plane ------------------------------------------------------------------------------------------
def test_account_identities(arm: ArmSim, aa: AutomationClient) -> None:
    acct = aa.automation_account.get(RG, AA)
    assert acct.type == "Microsoft.Automation/AutomationAccounts" and acct.properties.state == "Ok"
    assert acct.identity.type == "SystemAssigned, UserAssigned"
    assert acct.identity.principal_id and acct.identity.tenant_id == arm.tenant_id
    uami = acct.identity.user_assigned_identities[UAMI]
    assert uami.principal_id and uami.client_id and uami.principal_id != acct.identity.principal_id
    # a second PUT keeps the system principal; PATCH can drop the UAMI; None drops everything
    again = aa.automation_account.create_or_update(RG, AA, {"location": LOCATION, "identity": {
        "type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {UAMI: {}}}})
    assert again.identity.principal_id == acct.identity.principal_id
    assert again.identity.user_assigned_identities[UAMI].client_id == uami.client_id
    patched = aa.automation_account.update(RG, AA, {"identity": {"type": "SystemAssigned"}})
    assert patched.identity.type == "SystemAssigned" and not patched.identity.user_assigned_identities
    assert aa.automation_account.update(RG, AA, {"identity": {"type": "None"}}).identity is None
    with pytest.raises(HttpResponseError) as e:
        aa.automation_account.update(RG, AA, {"identity": {"type": "UserAssigned"}})
    assert e.value.status_code == 400
    assert [a.name for a in aa.automation_account.list_by_resource_group(RG)] == [AA]
    assert AA in [a.name for a in aa.automation_account.list()]


def test_deploy_order_of_the_reference(arm: ArmSim, aa: AutomationClient, wheels: WheelServer) -> None:
    """§9: account → runtime environment → package (poll) → runbook → draft (202) → publish (202) → schedule →
    job schedule → job → output and streams."""
    greet = wheels.dir / "greet-1.0-py3-none-any.whl"
    pkg = import_package(aa, "greet", wheels.link(greet))
    assert pkg.properties.provisioning_state == "Succeeded", pkg.properties.error
    assert pkg.properties.size_in_bytes == greet.stat().st_size
    assert [p.name for p in aa.package.list_by_runtime_environment(RG, AA, RE)] == ["greet"]

    rb = aa.runbook.create_or_update(RG, AA, "sweep", {"location": LOCATION, "properties": {
        "runbookType": "Python", "runtimeEnvironment": RE, "logVerbose": False, "logProgress": False, "draft": {}}})
    assert rb.properties.state == "New" and rb.properties.job_count == 0
    assert rb.properties.runtime_environment == RE and rb.properties.runbook_type == "Python"
    since = arm.last_request
    script = "import sys, greet\nprint(greet.hello(sys.argv[1]), flush=True)\n"
    aa.runbook_draft.begin_replace_content(RG, AA, "sweep", script).result()
    assert aa.runbook_draft.get_content(RG, AA, "sweep") == script
    assert aa.runbook.get(RG, AA, "sweep").properties.state == "New"
    with pytest.raises(ResourceNotFoundError):
        aa.runbook.get_content(RG, AA, "sweep")  # nothing published yet
    aa.runbook.begin_publish(RG, AA, "sweep").result()
    assert aa.runbook.get(RG, AA, "sweep").properties.state == "Published"
    assert aa.runbook.get_content(RG, AA, "sweep") == script
    log = [(r["method"], r["path"].rsplit("/", 3)[-3:], r["status"]) for r in arm.requests(since)]
    assert [s for m, p, s in log if m in ("PUT", "POST")] == [202, 202]  # draft content, publish: 202 only
    assert sum(1 for _, p, _ in log if "operationResults" in p) == 2  # each Location polled once

    start = datetime.now(timezone.utc) + timedelta(days=1, seconds=37)
    sched = aa.schedule.create_or_update(RG, AA, "daily", {"name": "daily", "properties": {
        "startTime": start.isoformat(), "frequency": "Day", "interval": 1, "timeZone": "UTC"}})
    assert sched.properties.start_time == start.replace(second=0, microsecond=0)
    assert sched.properties.next_run == sched.properties.start_time and sched.properties.is_enabled

    js_id = "0fa462ba-3aa2-4138-83ca-9ebc3bc55cdc"
    js = aa.job_schedule.create(RG, AA, js_id, {"properties": {
        "schedule": {"name": "daily"}, "runbook": {"name": "sweep"}, "parameters": {"who": "world"}}})
    assert js.properties.job_schedule_id == js_id and js.properties.runbook.name == "sweep"
    jobs = aa.job_schedule.list_by_automation_account(RG, AA, filter="properties/runbook/name eq 'sweep'")
    assert [j.properties.job_schedule_id for j in jobs] == [js_id]

    if find_python() is None:
        pytest.skip("no Python 3.10 interpreter to run the job")
    job, records = run_job(arm, aa, "sweep", {"who": "world"})
    assert job.properties.status == "Completed" and job.properties.provisioning_state == "Succeeded"
    assert job.properties.job_runtime_environment.runtime_environment_name == RE
    assert job.properties.start_time and job.properties.end_time and job.properties.exception is None
    assert aa.job.get_output(RG, AA, job.name) == "hello world"
    assert records == [("Output", "hello world")]
    assert aa.job.get_runbook_content(RG, AA, job.name) == script
    assert aa.runbook.get(RG, AA, "sweep").properties.job_count == 1
    assert [j.name for j in aa.job.list_by_automation_account(RG, AA)] == [job.name]


def test_job_schedules_are_immutable_with_the_services_conflicts(aa: AutomationClient) -> None:
    aa.runbook.create_or_update(RG, AA, "rb", {"location": LOCATION, "properties": {
        "runbookType": "Python", "runtimeEnvironment": RE, "draft": {}}})
    for name in ("s1", "s2"):
        aa.schedule.create_or_update(RG, AA, name, {"name": name, "properties": {
            "startTime": (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat(), "frequency": "Hour",
            "interval": 1}})
    first, second = "6d3b4c1a-0000-4000-8000-000000000001", "6d3b4c1a-0000-4000-8000-000000000002"
    body = {"properties": {"schedule": {"name": "s1"}, "runbook": {"name": "rb"}}}
    assert aa.job_schedule.create(RG, AA, first, body).properties.schedule.name == "s1"
    with pytest.raises(ResourceExistsError) as e:
        aa.job_schedule.create(RG, AA, second, body)  # same (runbook, schedule) pair
    assert e.value.message.endswith("A job schedule for the specified runbook and schedule already exists.")
    with pytest.raises(ResourceExistsError) as e:
        aa.job_schedule.create(RG, AA, first, {"properties": {"schedule": {"name": "s2"}, "runbook": {"name": "rb"}}})
    assert e.value.message.endswith("A jobSchedule with same id already exists.")
    assert not hasattr(aa.job_schedule, "update")
    aa.job_schedule.delete(RG, AA, first)  # delete + recreate is the only way to change one
    aa.job_schedule.create(RG, AA, second, body)
    assert [j.properties.job_schedule_id for j in aa.job_schedule.list_by_automation_account(RG, AA)] == [second]
    aa.schedule.delete(RG, AA, "s1")  # deleting the schedule removes its job schedules
    assert list(aa.job_schedule.list_by_automation_account(RG, AA)) == []


def test_editing_a_published_runbook_goes_to_edit(aa: AutomationClient) -> None:
    publish(aa, "rb", "print('v1')\n")
    aa.runbook_draft.begin_replace_content(RG, AA, "rb", "print('v2')\n").result()
    assert aa.runbook.get(RG, AA, "rb").properties.state == "Edit"
    assert aa.runbook_draft.get(RG, AA, "rb").in_edit is True
    assert aa.runbook.get_content(RG, AA, "rb") == "print('v1')\n"  # jobs still run the published script
    aa.runbook_draft.undo_edit(RG, AA, "rb")
    assert aa.runbook.get(RG, AA, "rb").properties.state == "Published"
    assert aa.runbook_draft.get_content(RG, AA, "rb") == "print('v1')\n"
    aa.runbook_draft.begin_replace_content(RG, AA, "rb", "print('v3')\n").result()
    aa.runbook.begin_publish(RG, AA, "rb").result()
    assert aa.runbook.get_content(RG, AA, "rb") == "print('v3')\n"
    assert aa.runbook_draft.get(RG, AA, "rb").in_edit is False


def test_runtime_environment_and_runbook_rules(aa: AutomationClient) -> None:
    def refused(fn: Any, *args: Any) -> str:
        with pytest.raises(HttpResponseError) as e:
            fn(RG, AA, *args)
        assert e.value.status_code == 400, e.value
        return str(e.value.error.message)

    python = {"location": LOCATION, "properties": {"runtime": {"language": "Python", "version": "3.10"}}}
    assert "cannot be changed" in refused(aa.runtime_environments.create, RE, {
        "location": LOCATION, "properties": {"runtime": {"language": "Python", "version": "3.8"}}})
    assert "cannot be changed" in refused(aa.runtime_environments.update, RE, {
        "properties": {"runtime": {"language": "PowerShell", "version": "7.4"}}})
    assert "Python 3.10 only" in refused(aa.runtime_environments.create, "ps74", {
        "location": LOCATION, "properties": {"runtime": {"language": "PowerShell", "version": "7.4"}}})
    assert "system generated" in refused(aa.runtime_environments.create, "Python-3.10", python)
    assert "must begin with a letter" in refused(aa.runtime_environments.create, "py.3", python)
    assert aa.runtime_environments.get(RG, AA, RE).properties.runtime.version == "3.10"
    assert "Python" in refused(aa.runbook.create_or_update, "ps", {"location": LOCATION, "properties": {
        "runbookType": "PowerShell", "runtimeEnvironment": RE}})
    assert "not found" in refused(aa.runbook.create_or_update, "rb", {"location": LOCATION, "properties": {
        "runbookType": "Python", "runtimeEnvironment": "nope"}})
    aa.runbook.create_or_update(RG, AA, "rb", {"location": LOCATION, "properties": {
        "runbookType": "Python", "runtimeEnvironment": RE, "draft": {}}})
    assert "not published" in refused(aa.job.create, "j1", {"properties": {"runbook": {"name": "rb"}}})
    assert "no draft content" in refused(aa.runbook.begin_publish, "rb")
    with pytest.raises(ResourceNotFoundError):
        aa.runbook.get(RG, AA, "missing")


def test_packages_fail_on_wrong_tags_hash_or_link(aa: AutomationClient, wheels: WheelServer) -> None:
    windows = make_wheel(wheels.dir, "winonly", {"winonly.py": ""}, tag="cp310-cp310-win_amd64")
    cp38 = make_wheel(wheels.dir, "old", {"old.py": ""}, tag="cp38-cp38-manylinux2014_x86_64")
    ok = make_wheel(wheels.dir, "native", {"native.py": ""},
                    tag="cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64")
    cases = {
        "winonly": (wheels.link(windows), "UnsupportedPackage", "Linux x86_64"),
        "old": (wheels.link(cp38), "UnsupportedPackage", "cp310, abi3 or none"),
        "badhash": (wheels.link(ok, "00" * 32), "ContentHashMismatch", "does not match"),
        "gone": ({"uri": wheels.url(wheels.dir / "gone-1.0-py3-none-any.whl")}, "ContentDownloadFailed", "404"),
    }
    for name, (link, code, words) in cases.items():
        pkg = import_package(aa, name, link)
        assert pkg.properties.provisioning_state == "Failed", name
        assert pkg.properties.error.code == code and words in pkg.properties.error.message, pkg.properties.error
    assert import_package(aa, "native", wheels.link(ok)).properties.provisioning_state == "Succeeded"


def test_package_over_https_trusts_a_configured_ca(arm: ArmSim, aa: AutomationClient, tmp_path: Path) -> None:
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    wheel = make_wheel(tmp_path, "tls", {"tls.py": ""})
    server = WheelServer(tmp_path, tls=ctx)
    try:
        failed = import_package(aa, "tls", server.link(wheel))
        assert failed.properties.provisioning_state == "Failed"
        assert "CERTIFICATE_VERIFY_FAILED" in failed.properties.error.message
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        arm.world.config.package_ca_bundle = str(bundle)
        assert import_package(aa, "tls", server.link(wheel)).properties.provisioning_state == "Succeeded"
    finally:
        server.close()


def test_package_state_keeps_no_wheel_bytes(arm: ArmSim, aa: AutomationClient, wheels: WheelServer) -> None:
    greet = wheels.dir / "greet-1.0-py3-none-any.whl"
    assert import_package(aa, "greet", wheels.link(greet)).properties.provisioning_state == "Succeeded"
    state = arm.world.to_state()
    (pkg,) = state["subscriptions"][arm.subscription_id.lower()]["automation"]["packages"].values()
    assert pkg["fetched"] == {"file": f"{sha256(greet)}.whl", "sha256": sha256(greet),
                              "size": greet.stat().st_size}
    assert (arm.workdir / "automation" / "wheels" / pkg["fetched"]["file"]).read_bytes() == greet.read_bytes()
    world = World()
    world.load_state(json.loads(json.dumps(state)))
    assert world.default.automation.packages == arm.world.default.automation.packages
    assert world.default.automation.accounts == arm.world.default.automation.accounts


def test_schedules_and_variables(aa: AutomationClient) -> None:
    start = datetime(2026, 1, 5, 6, 30, 45, tzinfo=timezone.utc)
    sched = aa.schedule.create_or_update(RG, AA, "hourly", {"name": "hourly", "properties": {
        "startTime": start.isoformat(), "frequency": "Hour", "interval": 2}})
    assert sched.properties.start_time == datetime(2026, 1, 5, 6, 30, tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)
    assert now <= sched.properties.next_run <= now + timedelta(hours=2)
    assert (sched.properties.next_run - sched.properties.start_time) % timedelta(hours=2) == timedelta(0)
    assert aa.schedule.update(RG, AA, "hourly", {"properties": {"isEnabled": False}}).properties.next_run is None
    with pytest.raises(HttpResponseError) as e:
        aa.schedule.create_or_update(RG, AA, "bad", {"name": "bad", "properties": {
            "startTime": start.isoformat(), "frequency": "Fortnight"}})
    assert e.value.status_code == 400
    var = aa.variable.create_or_update(RG, AA, "dry_run", {"name": "dry_run", "properties": {"value": '"true"'}})
    assert var.properties.value == '"true"'
    with pytest.raises(HttpResponseError) as e:
        aa.variable.create_or_update(RG, AA, "raw", {"name": "raw", "properties": {"value": "not json"}})
    assert e.value.status_code == 400 and "not valid JSON" in str(e.value.error.message)
    secret = aa.variable.create_or_update(RG, AA, "s", {"name": "s", "properties": {
        "value": '"x"', "isEncrypted": True}})
    assert secret.properties.value is None and secret.properties.is_encrypted
    assert sorted(v.name for v in aa.variable.list_by_automation_account(RG, AA)) == ["dry_run", "s"]


def test_rbac_actions_are_automations(arm: ArmSim, aa: AutomationClient, env: Env) -> None:
    publish(aa, "rb", "print(1)\n")
    arm.world.config.rbac = True
    arm.world.rbac = {"roleDefinitions": [{"id": "reader", "permissions": [
        {"actions": ["Microsoft.Automation/automationAccounts/*/read", "Microsoft.Automation/automationAccounts/read"]}
    ]}], "roleAssignments": [{"principalId": "operator", "roleDefinitionId": "reader", "scope": env.rg_id(RG)}]}
    client = arm.automation_client(arm.credential("operator"), retry_total=0)
    assert client.runbook.get(RG, AA, "rb").properties.state == "Published"
    with pytest.raises(HttpResponseError) as e:
        client.job.create(RG, AA, "j", {"properties": {"runbook": {"name": "rb"}}})
    assert e.value.status_code == 403
    assert "'Microsoft.Automation/automationAccounts/jobs/write'" in str(e.value.error.message)
    with pytest.raises(HttpResponseError) as e:
        client.runbook.begin_publish(RG, AA, "rb")
    assert "'Microsoft.Automation/automationAccounts/runbooks/publish/action'" in str(e.value.error.message)


def test_text_bodies_and_error_envelopes(arm: ArmSim, aa: AutomationClient, env: Env) -> None:
    path = f"{env.rg_id(RG)}/providers/Microsoft.Automation/automationAccounts/{AA}/runbooks/rb"
    api = "2024-10-23"
    aa.runbook.create_or_update(RG, AA, "rb", {"location": LOCATION, "properties": {
        "runbookType": "Python", "runtimeEnvironment": RE, "draft": {}}})
    resp = env.raw("PUT", f"{path}/draft/content", api=api, data="print('é')".encode(),
                   headers={"Content-Type": "text/plain"})
    assert resp.status_code == 202 and "/draft/content/operationResults/" in resp.headers["Location"]
    got = env.raw("GET", f"{path}/draft/content", api=api)
    assert got.headers["Content-Type"].startswith("text/plain") and got.text == "print('é')"
    bad = env.raw("PUT", f"{path}/draft/content", api=api, data=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400 and error_body(bad)["code"] == "InvalidRequestContent"
    missing = env.raw("GET", f"{path}s/nope", api=api)
    assert missing.status_code == 404 and error_body(missing)["code"] == "InvalidResourceType"
    assert error_body(env.raw("GET", path.replace("/rb", "/nope"), api=api))["code"] == "NotFound"
    assert error_body(env.raw("GET", path.replace(AA, "zz"), api=api))["code"] == "ParentResourceNotFound"


# --- the sandbox --------------------------------------------------------------------------------------------
def test_stream_prefixes_and_wheel_tags() -> None:
    assert [classify(x) for x in ("ERROR: a", "error: a", "Error: a", "eRROR: a", "WARNING: w", "warning:",
                                  "VERBOSE: v", "Debug: d", "plain", " ERROR: indented")] == [
        "Error", "Error", "Error", "Output", "Warning", "Warning", "Verbose", "Debug", "Output", "Output"]
    assert wheel_problem("pydantic_core-2.50.4-cp310-cp310-manylinux2014_x86_64.manylinux_2_17_x86_64.whl") is None
    assert wheel_problem("cryptography-50.0.2-cp39-abi3-manylinux2014_x86_64.whl") is None
    assert wheel_problem("six-1.17.0-py2.py3-none-any.whl") is None
    assert wheel_problem("cffi-2.1.1-cp310-cp310-manylinux2014_aarch64.whl") is not None
    assert wheel_problem("pkg-1.0-cp311-cp311-manylinux2014_x86_64.whl") is not None
    assert wheel_problem("pkg-1.0.tar.gz") is not None


@needs_python310
def test_job_streams_exit_code_and_verbose(arm: ArmSim, aa: AutomationClient, wheels: WheelServer) -> None:
    import_package(aa, "greet", wheels.link(wheels.dir / "greet-1.0-py3-none-any.whl"))
    script = ("import sys, greet\n"
              "print(greet.hello(sys.argv[1]))\n"
              "print('ERROR: could not remediate vm1')\n"
              "print('Warning: vm2 skipped')\n"
              "print('VERBOSE: detail')\n"
              "print('DEBUG: noise')\n"
              "print('argv', sys.argv[2:])\n"
              "sys.stdout.flush()\n"
              "print('boom on stderr', file=sys.stderr)\n"
              "sys.exit(3)\n")
    publish(aa, "quiet", script)
    params = {"z": '"world"', "a": "true", "m": "key=value", "n": "[1, 2]"}
    job, records = run_job(arm, aa, "quiet", params)
    assert job.properties.status == "Failed" and job.properties.provisioning_state == "Failed"
    assert job.properties.exception == "boom on stderr"
    # stdout and stderr are separate pipes: their records keep each pipe's order, not one global order
    assert [r for r in records if r != ("Error", "boom on stderr")] == [
        ("Output", "hello world"), ("Error", "ERROR: could not remediate vm1"), ("Warning", "Warning: vm2 skipped"),
        ("Output", "argv ['True', 'key=value', '[1, 2]']")]
    assert records.count(("Error", "boom on stderr")) == 1
    assert aa.job.get_output(RG, AA, job.name) == "hello world\nargv ['True', 'key=value', '[1, 2]']"
    errors = aa.job_stream.list_by_job(RG, AA, job.name, filter="properties/streamType eq 'Error'")
    ids = [s.properties.job_stream_id for s in errors]
    assert len(ids) == 2 and all(i.startswith(job.properties.job_id + "_") for i in ids)
    assert all(len(i.split("_")[1]) == 20 and len(i.split("_")[2]) == 20 for i in ids)

    publish(aa, "chatty", script, log_verbose=True)
    _, records = run_job(arm, aa, "chatty", params)
    assert ("Verbose", "VERBOSE: detail") in records and not any(t == "Debug" for t, _ in records)


@needs_python310
def test_missing_dependency_fails_at_run_time(arm: ArmSim, aa: AutomationClient) -> None:
    publish(aa, "needs", "import requests\nprint('never')\n")
    job, records = run_job(arm, aa, "needs")
    assert job.properties.status == "Failed"
    assert "ModuleNotFoundError: No module named 'requests'" in job.properties.exception
    assert ("Error", "ModuleNotFoundError: No module named 'requests'") in records


@needs_python310
def test_time_limit_stops_the_job(arm: ArmSim, aa: AutomationClient) -> None:
    arm.world.config.job_time_limit_s = 1.0
    publish(aa, "long", "import time\nprint('started', flush=True)\nprint('lost in the buffer')\ntime.sleep(60)\n")
    started = time.monotonic()
    job, records = run_job(arm, aa, "long")
    assert time.monotonic() - started < 10
    assert job.properties.status == "Stopped" and job.properties.exception == FAIR_SHARE_EXCEPTION
    assert records == [("Output", "started")]  # block-buffered stdout dies with the process


@needs_python310
def test_stop_and_queueing(arm: ArmSim, aa: AutomationClient) -> None:
    arm.world.config.sandbox_max_jobs = 1
    publish(aa, "wait", "import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    publish(aa, "quick", "print('done')\n")
    first = start_job(aa, "wait")
    wait_status(aa, first, "Running")
    queued = start_job(aa, "quick")
    dropped = start_job(aa, "quick")
    time.sleep(0.5)
    assert aa.job.get(RG, AA, queued).properties.status == "New"  # no free slot
    aa.job.stop(RG, AA, dropped)
    aa.job.stop(RG, AA, first)
    assert arm.wait_job(RG, AA, first)["properties"]["status"] == "Stopped"
    assert arm.wait_job(RG, AA, dropped)["properties"]["status"] == "Stopped"
    assert arm.wait_job(RG, AA, queued)["properties"]["status"] == "Completed"
    assert aa.job.get_output(RG, AA, queued) == "done" and aa.job.get_output(RG, AA, dropped) == ""
    aa.job.stop(RG, AA, first)  # stopping a finished job changes nothing
    assert aa.job.get(RG, AA, first).properties.status == "Stopped"


@needs_python310
def test_firing_a_job_schedule(arm: ArmSim, aa: AutomationClient, env: Env) -> None:
    publish(aa, "tick", "import sys\nprint('tick', sys.argv[1])\n")
    aa.schedule.create_or_update(RG, AA, "s", {"name": "s", "properties": {
        "startTime": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(), "frequency": "Day", "interval": 1}})
    js = aa.job_schedule.create(RG, AA, "11111111-2222-4333-8444-555555555555", {"properties": {
        "schedule": {"name": "s"}, "runbook": {"name": "tick"}, "parameters": {"n": "42"}}})
    resp = requests.post(f"{arm.endpoint}/_armsim/automation/fire", json={"jobSchedule": js.id},
                         verify=arm.ca_bundle, timeout=10)
    assert resp.status_code == 201, resp.text
    job = resp.json()
    waited = requests.get(f"{arm.endpoint}/_armsim/automation/wait", params={"job": job["id"], "timeout": "20"},
                          verify=arm.ca_bundle, timeout=30).json()
    assert waited["properties"]["status"] == "Completed" and waited["properties"]["startedBy"] == "Scheduler"
    assert aa.job.get_output(RG, AA, job["name"]) == "tick 42"


@needs_python310
def test_the_scheduler_starts_one_job_per_due_occurrence(arm: ArmSim, aa: AutomationClient) -> None:
    publish(aa, "tick", "print('scheduled')\n")
    start = datetime.now(timezone.utc) + timedelta(hours=1)
    aa.schedule.create_or_update(RG, AA, "s", {"name": "s", "properties": {
        "startTime": start.isoformat(), "frequency": "Hour", "interval": 1}})
    aa.job_schedule.create(RG, AA, "21111111-2222-4333-8444-555555555555", {"properties": {
        "schedule": {"name": "s"}, "runbook": {"name": "tick"}}})
    sub = arm.world.default
    with arm.world.lock:
        assert fire_due_schedules(sub) == []  # not due yet
        real_clock = arm.world.clock
        arm.world.clock = lambda: real_clock() + 3 * 3600  # three occurrences later
        try:
            fired = fire_due_schedules(sub)
            assert fire_due_schedules(sub) == []  # missed occurrences collapse into one job
        finally:
            arm.world.clock = real_clock
    assert [j.started_by for j in fired] == ["Scheduler"]
    assert arm.wait_job(RG, AA, fired[0].name)["properties"]["status"] == "Completed"
    assert aa.job.get_output(RG, AA, fired[0].name) == "scheduled"


@needs_python310
def test_unfinished_jobs_restart_from_the_beginning_after_a_restart(tmp_path: Path) -> None:
    state, marker = tmp_path / "state.json", tmp_path / "first-run-done"
    script = ("import os, sys, time\n"
              "print('run', flush=True)\n"
              "if not os.path.exists(sys.argv[1]):\n"
              "    open(sys.argv[1], 'w').close()\n"
              "    time.sleep(60)\n")
    with ArmSim(state_file=state, latency_scale=0.001, throttling=False) as first:
        first.world.default.ensure_rg(RG)
        client = first.automation_client(retry_total=0)
        client.automation_account.create_or_update(RG, AA, {"location": LOCATION})
        client.runtime_environments.create(RG, AA, RE, {"location": LOCATION, "properties": {
            "runtime": {"language": "Python", "version": "3.10"}}})
        publish(client, "resumable", script)
        name = start_job(client, "resumable", {"marker": json.dumps(str(marker))})
        wait_status(client, name, "Running")
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with ArmSim(state_file=state, latency_scale=0.001, throttling=False) as second:
        assert second.wait_job(RG, AA, name, 20)["properties"]["status"] == "Completed"
        assert streams(second.automation_client(retry_total=0), name) == [("Output", "run"), ("Output", "run")]


@needs_python310
def test_job_without_python_fails_clearly(arm: ArmSim, aa: AutomationClient) -> None:
    arm.world.config.sandbox_python = "/nonexistent/python3.10"
    publish(aa, "rb", "print(1)\n")
    job, records = run_job(arm, aa, "rb")
    assert job.properties.status == "Failed" and job.properties.exception == NO_PYTHON
    assert records == [("Error", NO_PYTHON)]


IDENTITY_PROBE = """\
import json, os, sys, urllib.error, urllib.request

def token(query, header=None):
    req = urllib.request.Request(os.environ["IDENTITY_ENDPOINT"] + "?api-version=2019-08-01&" + query, headers={
        "X-IDENTITY-HEADER": header or os.environ["IDENTITY_HEADER"], "Metadata": "true"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

resource = "resource=https%3A%2F%2Fmanagement.azure.com"
for label, query in (("system", resource), ("uami", resource + "&client_id=" + sys.argv[1]),
                     ("unknown", resource + "&client_id=00000000-dead-beef-0000-000000000000")):
    print(label, json.dumps(token(query)))
print("forged", token(resource, header="guess")[0])
print("job", os.environ["AUTOMATION_JOB_ID"], os.environ["AZURE_SUBSCRIPTION_ID"], os.environ["RUNBOOKS_ARM_ENDPOINT"],
      os.environ["SSL_CERT_FILE"] == os.environ["RUNBOOKS_CA_BUNDLE"], os.getcwd() == os.environ["HOME"])
"""


@needs_python310
def test_job_identity_endpoint_grants_the_accounts_identities_only(arm: ArmSim, aa: AutomationClient) -> None:
    acct = aa.automation_account.get(RG, AA)
    uami = acct.identity.user_assigned_identities[UAMI]
    publish(aa, "probe", IDENTITY_PROBE)
    job, _ = run_job(arm, aa, "probe", {"client": uami.client_id})
    assert job.properties.status == "Completed", job.properties.exception
    lines = dict(line.split(" ", 1) for line in aa.job.get_output(RG, AA, job.name).splitlines())
    status, body = json.loads(lines["system"])
    assert status == 200 and jwt_claims(body["access_token"])["oid"] == acct.identity.principal_id
    status, body = json.loads(lines["uami"])
    assert status == 200 and jwt_claims(body["access_token"])["oid"] == uami.principal_id
    assert json.loads(lines["unknown"]) == [400, {"statusCode": 400, "message": (
        "User assigned identity is currently not supported clientID must not be passed in request")}]
    assert lines["forged"] == "401"
    assert lines["job"] == f"{job.properties.job_id} {arm.subscription_id} {arm.endpoint} True True"


# --- a real runbook: ManagedIdentityCredential + azure-mgmt-compute inside the sandbox -------------------------
COMPUTE_RUNBOOK = """\
import os, sys
from azure.identity import ManagedIdentityCredential
from azure.mgmt.compute import ComputeManagementClient

client_id = sys.argv[1] if sys.argv[1] != "system" else None
credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
compute = ComputeManagementClient(credential, os.environ["AZURE_SUBSCRIPTION_ID"],
                                  base_url=os.environ["RUNBOOKS_ARM_ENDPOINT"],
                                  connection_verify=os.environ["RUNBOOKS_CA_BUNDLE"],
                                  credential_scopes=["https://management.azure.com/.default"])
vm = compute.virtual_machines.get(sys.argv[2], sys.argv[3], expand="instanceView")
print("vm", vm.name, [s.code for s in vm.instance_view.statuses], flush=True)
"""


@pytest.fixture(scope="session")
def cp310_wheels(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """azure-identity + azure-mgmt-compute and their closure as cp310 manylinux x86_64 wheels, downloaded
    once into the pytest cache (the §6 recipe); skips when the package index is unreachable."""
    pytest_cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cache = (Path(pytest_cache.mkdir("armsim-automation-cp310-wheels")) if pytest_cache is not None
             else tmp_path_factory.mktemp("cp310-wheels"))
    if not (cache / "complete").exists():
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--platform",
               "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.10",
               "--implementation", "cp", "--abi", "cp310", "--abi", "abi3", "--abi", "none", "azure-identity",
               "azure-mgmt-compute", "-d", str(cache)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            pytest.skip("pip download of the cp310 wheel set timed out (package index unreachable?)")
        if done.returncode != 0:
            pytest.skip(f"pip download of the cp310 wheel set failed (package index unreachable?): "
                        f"{done.stderr.strip().splitlines()[-1:]}")
        (cache / "complete").write_text("ok")
    return sorted(cache.glob("*.whl"))


@needs_python310
def test_runbook_reads_a_vm_with_the_accounts_managed_identity(arm: ArmSim, aa: AutomationClient, env: Env,
                                                               cp310_wheels: list[Path]) -> None:
    server = WheelServer(cp310_wheels[0].parent)
    try:
        for wheel in cp310_wheels:
            name = wheel.name.split("-")[0]
            created = aa.package.create_or_update(RG, AA, RE, name, {"properties": {"contentLink": server.link(wheel)}})
            assert created.properties.provisioning_state == "Creating"
        states = {w.name.split("-")[0]: wait_package(aa, w.name.split("-")[0]).properties.provisioning_state
                  for w in cp310_wheels}
    finally:
        server.close()
    assert set(states.values()) == {"Succeeded"}, states
    env.rg("rg-vms")
    env.vm("rg-vms", "vm1")
    acct = aa.automation_account.get(RG, AA)
    uami = acct.identity.user_assigned_identities[UAMI]
    # only the account's system identity may read VMs in rg-vms; the operator running the test may do anything
    arm.world.rbac = {"roleDefinitions": [
        {"id": "all", "permissions": [{"actions": ["*"]}]},
        {"id": "vm-reader", "permissions": [{"actions": ["Microsoft.Compute/virtualMachines/read"]}]}],
        "roleAssignments": [
            {"principalId": "armsim-user", "roleDefinitionId": "all", "scope": f"/subscriptions/{arm.subscription_id}"},
            {"principalId": acct.identity.principal_id, "roleDefinitionId": "vm-reader", "scope": env.rg_id("rg-vms")}]}
    arm.world.config.rbac = True
    publish(aa, "readvm", COMPUTE_RUNBOOK)

    job, records = run_job(arm, aa, "readvm", {"identity": "system", "rg": "rg-vms", "vm": "vm1"}, timeout=60)
    assert job.properties.status == "Completed", job.properties.exception
    assert records == [("Output", "vm vm1 ['ProvisioningState/succeeded', 'PowerState/running']")]
    reads = [r for r in arm.requests() if r["path"].endswith("/virtualMachines/vm1") and r["method"] == "GET"]
    assert reads and reads[-1]["principal"] == acct.identity.principal_id

    job, _ = run_job(arm, aa, "readvm", {"identity": uami.client_id, "rg": "rg-vms", "vm": "vm1"}, timeout=60)
    assert job.properties.status == "Failed"  # the UAMI got a token (its own oid) but has no role
    assert "AuthorizationFailed" in job.properties.exception and uami.principal_id in job.properties.exception

    job, _ = run_job(arm, aa, "readvm", {"identity": "5f0c0000-0000-4000-8000-00000000abcd", "rg": "rg-vms",
                                         "vm": "vm1"}, timeout=60)
    assert job.properties.status == "Failed"
    assert "clientID must not be passed in request" in job.properties.exception


# --- robustness --------------------------------------------------------------------------------------------
_WORLD = World()
_APP = App(_WORLD)
_TOKEN = make_token("fuzzer", _WORLD.default.tenant_id)[0]
_AA = f"/subscriptions/{_WORLD.default.id}/resourceGroups/rg/providers/Microsoft.Automation/automationAccounts/a"
_PATHS = [_AA, f"{_AA}/runtimeEnvironments/e", f"{_AA}/runtimeEnvironments/e/packages/p", f"{_AA}/runbooks/r",
          f"{_AA}/runbooks/r/draft/content", f"{_AA}/runbooks/r/publish", f"{_AA}/schedules/s",
          f"{_AA}/jobSchedules/6d3b4c1a-0000-4000-8000-000000000001", f"{_AA}/jobs/j", f"{_AA}/jobs/j/stop",
          f"{_AA}/jobs/j/streams", f"{_AA}/variables/v"]
_KEYS = st.sampled_from(["location", "properties", "identity", "type", "userAssignedIdentities", "sku", "name",
                         "runtime", "language", "version", "contentLink", "uri", "contentHash", "runbookType",
                         "runtimeEnvironment", "logVerbose", "draft", "startTime", "frequency", "interval",
                         "expiryTime", "schedule", "runbook", "parameters", "runOn", "value", "isEncrypted", "tags"])
_LEAVES = st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(
    ["Python", "3.10", "e", "r", "s", "SystemAssigned", "UserAssigned", "Hour", "OneTime", "2026-01-01T00:00:00Z",
     "http://127.0.0.1:9/x-1.0-py3-none-any.whl", '"v"', UAMI, "x"])
_BODIES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_KEYS, inner, max_size=4),
                       max_leaves=16)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["PUT", "PATCH", "POST", "DELETE", "GET"]), path=st.sampled_from(_PATHS),
       body=st.dictionaries(_KEYS, _BODIES, max_size=5))
def test_handlers_never_fail_on_random_bodies(method: str, path: str, body: dict[str, object]) -> None:
    with _WORLD.lock:
        _WORLD.default.ensure_rg("rg")
        for setup, setup_body in ((_AA, {"location": "eastus"}), (f"{_AA}/runtimeEnvironments/e", {
                "location": "eastus", "properties": {"runtime": {"language": "Python", "version": "3.10"}}})):
            _APP.handle(ArmRequest.build("PUT", f"{setup}?api-version=2024-10-23",
                                         {"Authorization": f"Bearer {_TOKEN}"}, json.dumps(setup_body).encode(),
                                         "https://armsim.test"))
        req = ArmRequest.build(method, f"{path}?api-version=2024-10-23", {"Authorization": f"Bearer {_TOKEN}"},
                               json.dumps(body).encode(), "https://armsim.test")
        outcome = _APP.handle(req)
    assert outcome.response is not None
    response = outcome.response
    assert response.status < 500, response.body
    if response.status >= 400:
        assert isinstance(response.body, dict) and set(response.body["error"]) >= {"code", "message"}
