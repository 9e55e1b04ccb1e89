"""Bad requests get ARM's 400/404/405 envelopes, never a 500 or a traceback."""

from __future__ import annotations

import json

import pytest
from armsim_env import Env, error_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from armsim.app import App
from armsim.http import ArmRequest
from armsim.identity import make_token
from armsim.keyvault import pipeline as keyvault
from armsim.state import World


def _check(resp_status: int, body: object) -> None:
    assert resp_status < 500, body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("code"), str) and isinstance(body["error"].get("message"), str)
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize("path,api,status,code", [
    ("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", None, 400,
     "MissingApiVersionParameter"),
    ("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", "2026-04-01", 404,
     "ResourceNotFound"),
    ("/subscriptions/{sub}/resourceGroups/nope/providers/Microsoft.Compute/virtualMachines/vm1", "2026-04-01", 404,
     "ResourceGroupNotFound"),
    ("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/fancyThings/x", "2026-04-01", 404,
     "InvalidResourceType"),
    ("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Nope/things/x", "2026-04-01", 404,
     "InvalidResourceType"),
    ("/subscriptions/{sub}/resourceGroups/rg/providers", "2026-04-01", 404, "InvalidResourceType"),
    ("/totally/not/an/arm/id", "2026-04-01", 404, "InvalidResourceType"),
    ("/subscriptions/ffffffff-0000-0000-0000-000000000000/resourceGroups/rg", "2025-04-01", 404,
     "SubscriptionNotFound"),
])
def test_bad_ids_and_types(env: Env, path: str, api: str | None, status: int, code: str) -> None:
    env.rg("rg")
    resp = env.raw("GET", path.format(sub=env.sub), api=api)
    assert resp.status_code == status, resp.text
    assert error_body(resp)["code"] == code


def test_unknown_type_message_names_type_and_namespace(env: Env) -> None:
    resp = env.raw("GET", f"/subscriptions/{env.sub}/resourceGroups/rg/providers/Microsoft.Compute/fancyThings/x")
    assert error_body(resp)["message"] == (
        "The resource type 'fancyThings' could not be found in the namespace 'Microsoft.Compute' for api version "
        "'2026-04-01'.")


def test_wrong_method_is_405(env: Env) -> None:
    env.rg("rg")
    resp = env.raw("POST", env.vm_id("rg", "vm1"), json={})
    assert resp.status_code == 405 and error_body(resp)["code"] == "MethodNotAllowed"


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"", b"\xff\xfe", b'"string"'])
def test_invalid_bodies_are_400(env: Env, data: bytes) -> None:
    env.rg("rg")
    resp = env.raw("PUT", env.vm_id("rg", "vm1"), data=data, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert error_body(resp)["code"] == "InvalidRequestContent"


@pytest.mark.parametrize("body", [
    {"location": "eastus"},
    {"location": "eastus", "properties": []},
    {"location": "eastus", "properties": {"hardwareProfile": "big"}},
    {"location": 5, "properties": {}},
    {"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "x"}, "storageProfile": {"osDisk": []}}},
    {"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "x"},
                                          "storageProfile": {"osDisk": {"createOption": "Sideways"}}}},
    {"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "x"}, "storageProfile": {
        "osDisk": {"createOption": "FromImage"}, "imageReference": {"publisher": "p"}},
        "osProfile": {"computerName": "c", "adminUsername": "u", "adminPassword": "p"},
        "networkProfile": {"networkInterfaces": ["not-a-dict"]}}},
    {"location": "eastus", "properties": {"hardwareProfile": {"vmSize": "x"}, "storageProfile": {
        "osDisk": {"createOption": "FromImage"}, "imageReference": {"publisher": "p"},
        "dataDisks": [{"lun": "zero", "createOption": "Empty"}]},
        "osProfile": {"computerName": "c", "adminUsername": "u", "adminPassword": "p"}}},
])
def test_wrong_json_shapes_are_400(env: Env, body: dict[str, object]) -> None:
    env.rg("rg")
    resp = env.raw("PUT", env.vm_id("rg", "vm1"), json=body)
    assert resp.status_code == 400, resp.text
    error_body(resp)


@pytest.mark.parametrize("path,body", [
    ("/providers/Microsoft.Compute/disks/d", {"location": "eastus", "properties": {"creationData": "Empty"}}),
    ("/providers/Microsoft.Compute/disks/d", {"location": "eastus", "sku": "Premium_LRS",
                                              "properties": {"creationData": {"createOption": "Empty"},
                                                             "diskSizeGB": 1}}),
    ("/providers/Microsoft.Compute/snapshots/s", {"location": "eastus", "properties": {
        "creationData": {"createOption": "Copy", "sourceResourceId": 7}}}),
    ("/providers/Microsoft.Compute/images/i", {"location": "eastus", "properties": {"sourceVirtualMachine": "vm"}}),
    ("/providers/Microsoft.Network/networkInterfaces/n", {"location": "eastus", "properties": {
        "ipConfigurations": ["x"]}}),
    ("/providers/Microsoft.Network/virtualNetworks/v", {"location": "eastus", "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": ["x"]}}),
    ("/providers/Microsoft.Network/publicIPAddresses/p", {"location": "eastus", "sku": "Standard"}),
    ("/providers/Microsoft.Authorization/locks/l", {"properties": "ReadOnly"}),
])
def test_wrong_json_shapes_on_other_resources_are_4xx(env: Env, path: str, body: dict[str, object]) -> None:
    env.rg("rg")
    api = "2026-03-02" if "/disks/" in path or "/snapshots/" in path else "2026-04-01"
    resp = env.raw("PUT", env.rg_id("rg") + path, json=body, api=api)
    assert 400 <= resp.status_code < 500, resp.text
    error_body(resp)


# --- property: nothing thrown at the pipeline makes it fail ------------------------------------------------

_WORLD = World()
_APP = App(_WORLD)
_SUB = _WORLD.default.id
_TOKEN = make_token("fuzzer", _WORLD.default.tenant_id)[0]
_WORLD.default.ensure_rg("rg")

_segments = st.sampled_from(["subscriptions", _SUB, "resourceGroups", "rg", "providers", "Microsoft.Compute",
                             "Microsoft.Network", "Microsoft.Authorization", "Microsoft.Insights", "virtualMachines",
                             "disks", "snapshots", "images", "networkInterfaces", "locks", "start", "generalize",
                             "instanceView", "extensions", "locations", "eastus", "operations", "%2F", "..", "",
                             "eventtypes", "management", "values", "operationresults", "x"]) | st.text(max_size=8)
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["location", "properties", "storageProfile", "osDisk", "createOption",
                                          "managedDisk", "id", "sku", "name", "zones", "tags", "hardwareProfile",
                                          "networkProfile", "creationData", "level", "lun"]), inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD"]),
       segments=st.lists(_segments, min_size=0, max_size=10),
       query=st.sampled_from(["", "api-version=2026-04-01", "api-version=2026-04-01&$expand=instanceView",
                              "api-version=x&$filter=eventTimestamp ge 'x'", "api-version=1&$skiptoken=-1",
                              "api-version=1&statusOnly=true"]),
       body=st.one_of(_json.map(lambda v: json.dumps(v).encode()), st.binary(max_size=20)))
def test_pipeline_never_fails_on_random_requests(method: str, segments: list[str], query: str, body: bytes) -> None:
    target = "/" + "/".join(segments) + (f"?{query}" if query else "")
    req = ArmRequest.build(method, target, {"Authorization": f"Bearer {_TOKEN}"}, body, "https://armsim.test")
    outcome = _APP.handle(req)
    if outcome.response is None:  # only a vault that does not exist: no such host, the connection drops
        assert outcome.drop and keyvault.owns(req.path), target
        return
    resp = outcome.response
    if resp.status >= 400:
        _check(resp.status, resp.body)
    else:
        assert resp.status < 300


_RG = f"/subscriptions/{_SUB}/resourceGroups/rg"
_RESOURCE_PATHS = [f"{_RG}/providers/Microsoft.Compute/{t}" for t in (
    "virtualMachines/vm", "virtualMachines/vm/extensions/e", "disks/d", "snapshots/s", "images/i")] + [
    f"{_RG}/providers/Microsoft.Network/{t}" for t in (
        "virtualNetworks/v", "virtualNetworks/v/subnets/s", "networkInterfaces/n", "publicIPAddresses/p")] + [
    _RG, f"{_RG}/providers/Microsoft.Authorization/locks/l"]
_BODY_KEYS = st.sampled_from(["location", "properties", "storageProfile", "osDisk", "createOption", "managedDisk",
                              "id", "sku", "name", "zones", "tags", "hardwareProfile", "vmSize", "networkProfile",
                              "networkInterfaces", "creationData", "sourceResourceId", "level", "lun", "dataDisks",
                              "osProfile", "imageReference", "ipConfigurations", "subnet", "addressSpace",
                              "addressPrefixes", "subnets", "addressPrefix", "sourceVirtualMachine", "identity",
                              "type", "plan", "securityProfile", "securityType", "publisher", "diskSizeGB"])
_LEAVES = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(
    ["eastus", "Attach", "FromImage", "Empty", "Copy", "ReadOnly", "10.0.0.0/24", _RG, f"{_RG}/x", "SystemAssigned"])
_BODIES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_BODY_KEYS, inner,
                                                                                              max_size=5),
                       max_leaves=20)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["PUT", "PATCH", "POST", "DELETE", "GET"]), path=st.sampled_from(_RESOURCE_PATHS),
       body=st.dictionaries(_BODY_KEYS, _BODIES, max_size=6))
def test_handlers_never_fail_on_random_bodies(method: str, path: str, body: dict[str, object]) -> None:
    api = "2025-04-01" if path == _RG else "2026-04-01"
    req = ArmRequest.build(method, f"{path}?api-version={api}", {"Authorization": f"Bearer {_TOKEN}"},
                           json.dumps(body).encode(), "https://armsim.test")
    with _WORLD.lock:
        _WORLD.default.ensure_rg("rg")
        outcome = _APP.handle(req)
        _WORLD.settle()
    assert outcome.response is not None
    if outcome.response.status >= 400:
        _check(outcome.response.status, outcome.response.body)
