"""Management locks, the activity log, managed identity and --rbac, through the real SDK clients."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
from armsim_env import Env, error_body
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError
from azure.identity import CredentialUnavailableError, DefaultAzureCredential, ManagedIdentityCredential

from armsim import ArmSim
from armsim.identity import SYSTEM_IDENTITY


def _since(minutes: int = 5) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- locks ---------------------------------------------------------------------------------------------


def test_can_not_delete_lock_refuses_delete_with_azures_message(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    locks = arm.lock_client()
    lock = locks.management_locks.create_or_update_at_resource_group_level(
        "rg", "no-delete", {"level": "CanNotDelete", "notes": "prod"})
    assert lock.level == "CanNotDelete"
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_delete("rg", "vm1")
    assert e.value.status_code == 409 and e.value.error.code == "ScopeLocked"
    assert e.value.error.message == (
        f"The scope '{env.vm_id('rg', 'vm1')}' cannot perform delete operation because following scope(s) are "
        f"locked: '{env.rg_id('rg')}'. Please remove the lock and try again.")
    # writes still pass under CanNotDelete
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    locks.management_locks.delete_at_resource_group_level("rg", "no-delete")
    env.compute.virtual_machines.begin_delete("rg", "vm1").result()


def test_read_only_lock_refuses_writes_but_not_reads(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    locks = arm.lock_client()
    locks.management_locks.create_or_update_by_scope(env.vm_id("rg", "vm1"), "ro", {"level": "ReadOnly"})
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_power_off("rg", "vm1")
    assert e.value.error.code == "ScopeLocked"
    assert "cannot perform write operation" in e.value.error.message
    assert env.compute.virtual_machines.get("rg", "vm1").name == "vm1"
    listed = [lk.name for lk in locks.management_locks.list_at_resource_group_level("rg")]
    assert listed == ["ro"]
    # the other VM in the group is not covered by a lock on vm1
    env.vm("rg", "vm2")
    env.compute.virtual_machines.begin_power_off("rg", "vm2").result()


# --- activity log -----------------------------------------------------------------------------------------


def test_failed_start_is_in_the_activity_log(arm: ArmSim, env: Env) -> None:
    arm.seed("generalized-after-capture")
    vm_id = env.vm_id("rg-demo", "app-01")
    with pytest.raises(ResourceExistsError):
        env.compute.virtual_machines.begin_start("rg-demo", "app-01")
    monitor = arm.monitor_client()
    events = list(monitor.activity_logs.list(
        filter=f"eventTimestamp ge '{_since()}' and resourceUri eq '{vm_id}'"))
    failed = [e for e in events if e.operation_name.value == "Microsoft.Compute/virtualMachines/start/action"
              and e.status.value == "Failed"]
    assert len(failed) == 2  # the seeded evidence and ours
    message = json.loads(failed[0].properties["statusMessage"])
    assert message["error"]["code"] == "OperationNotAllowed"
    assert message["error"]["message"] == "Operation 'start' is not allowed on VM 'app-01' since the VM is generalized."
    assert failed[0].level == "Error" and failed[0].resource_group_name == "rg-demo"
    # the deallocate that came before it was recorded as started, accepted and succeeded
    dealloc = {e.status.value for e in events if e.operation_name.value.endswith("deallocate/action")}
    assert {"Started", "Accepted", "Succeeded"} <= dealloc


def test_activity_log_requires_a_valid_filter(arm: ArmSim, env: Env) -> None:
    monitor = arm.monitor_client(retry_total=0)
    path = f"/subscriptions/{env.sub}/providers/Microsoft.Insights/eventtypes/management/values"
    missing = env.raw("GET", path, api="2015-04-01")
    assert missing.status_code == 400 and "$filter" in error_body(missing)["message"]
    for bad in ("eventTimestamp gt '2024-01-01'", "resourceGroupName eq 'rg'", "eventTimestamp ge 'yesterday'",
                "eventTimestamp ge '2024-01-01' or status eq 'Failed'"):
        with pytest.raises(HttpResponseError) as e:
            list(monitor.activity_logs.list(filter=bad))
        assert e.value.status_code == 400, bad
    assert list(monitor.activity_logs.list(filter=f"eventTimestamp ge '{_since()}' and status eq 'Failed'")) == []


# --- managed identity ---------------------------------------------------------------------------------------


@pytest.fixture
def identity_env(arm: ArmSim, monkeypatch: pytest.MonkeyPatch) -> ArmSim:
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "AZURE_TOKEN_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", arm.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", arm.identity_header)
    return arm


def test_managed_identity_credential_works_unchanged(identity_env: ArmSim, env: Env) -> None:
    arm = identity_env
    env.rg("rg")
    cred = ManagedIdentityCredential()
    token = cred.get_token("https://management.azure.com/.default")
    assert token.token and token.expires_on > datetime.now(timezone.utc).timestamp()
    compute = arm.compute_client(credential=cred, retry_total=0)
    assert list(compute.virtual_machines.list("rg")) == []
    assert arm.requests()[-1]["principal"] == SYSTEM_IDENTITY
    user = ManagedIdentityCredential(client_id="22222222-0000-0000-0000-000000000002")
    assert list(arm.compute_client(credential=user, retry_total=0).virtual_machines.list_all()) == []
    assert arm.requests()[-1]["principal"] == "22222222-0000-0000-0000-000000000002"


def test_default_azure_credential_works_unchanged(identity_env: ArmSim, env: Env) -> None:
    env.rg("rg")
    cred = DefaultAzureCredential(exclude_cli_credential=True, exclude_powershell_credential=True,
                                  exclude_developer_cli_credential=True, exclude_visual_studio_code_credential=True)
    compute = identity_env.compute_client(credential=cred, retry_total=0)
    assert list(compute.virtual_machines.list("rg")) == []
    assert identity_env.requests()[-1]["principal"] == SYSTEM_IDENTITY


def test_wrong_identity_header_is_rejected(identity_env: ArmSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)):
        ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    raw = requests.get(identity_env.identity_endpoint, params={"api-version": "2019-08-01",
                                                               "resource": "https://management.azure.com"},
                       headers={"X-IDENTITY-HEADER": "nope"}, timeout=10)
    assert raw.status_code == 401


def test_requests_without_a_bearer_token_are_401(env: Env) -> None:
    resp = env.raw("GET", f"/subscriptions/{env.sub}/resourceGroups", api="2025-04-01", token=False)
    assert resp.status_code == 401 and error_body(resp)["code"] == "AuthenticationFailed"
    assert "WWW-Authenticate" in resp.headers


# --- RBAC -----------------------------------------------------------------------------------------------------


def _roles(arm: ArmSim, principal: str, actions: list[str]) -> dict[str, object]:
    return {"roleDefinitions": [{"id": "fixer", "roleName": "VM Fixer",
                                 "permissions": [{"actions": actions, "notActions": []}]}],
            "roleAssignments": [{"principalId": principal, "roleDefinitionId": "fixer",
                                 "scope": f"/subscriptions/{arm.subscription_id}/resourceGroups/rg"}]}


def test_rbac_allows_granted_actions_and_names_the_missing_one(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    arm.world.config.rbac = True
    doc = _roles(arm, "fixer-1", ["Microsoft.Compute/virtualMachines/read",
                                  "Microsoft.Compute/virtualMachines/deallocate/action",
                                  "Microsoft.Compute/locations/operations/read"])
    put = requests.put(f"{arm.endpoint}/_armsim/rbac", json=doc, verify=arm.ca_bundle, timeout=10)
    assert put.status_code == 200
    compute = arm.compute_client(credential=arm.credential("fixer-1"), retry_total=0)
    assert compute.virtual_machines.get("rg", "vm1").name == "vm1"
    compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    with pytest.raises(HttpResponseError) as e:
        compute.virtual_machines.begin_delete("rg", "vm1")
    assert e.value.status_code == 403 and e.value.error.code == "AuthorizationFailed"
    assert "'Microsoft.Compute/virtualMachines/delete'" in e.value.error.message
    assert env.vm_id("rg", "vm1") in e.value.error.message
    # another principal has nothing, and an rbac scope does not leak to other resource groups
    stranger = arm.compute_client(credential=arm.credential("stranger"), retry_total=0)
    with pytest.raises(HttpResponseError) as e2:
        stranger.virtual_machines.get("rg", "vm1")
    assert e2.value.status_code == 403 and "'Microsoft.Compute/virtualMachines/read'" in e2.value.error.message


def test_rbac_rejects_tokens_armsim_did_not_issue(arm: ArmSim, env: Env) -> None:
    arm.world.config.rbac = True
    resp = env.raw("GET", f"/subscriptions/{env.sub}/resourceGroups", api="2025-04-01",
                   headers={"Authorization": "Bearer not-a-jwt"})
    assert resp.status_code == 401 and error_body(resp)["code"] == "InvalidAuthenticationToken"


def test_rbac_document_is_validated(arm: ArmSim) -> None:
    bad = requests.put(f"{arm.endpoint}/_armsim/rbac", json={"roleAssignments": [{"principalId": "x"}]},
                       verify=arm.ca_bundle, timeout=10)
    assert bad.status_code == 400


def test_rbac_linked_access_checks_on_referenced_resources(arm: ArmSim, env: Env) -> None:
    """Writing a NIC that uses a subnet needs subnets/join/action on the subnet; a VM that uses a NIC needs
    networkInterfaces/join/action on it — ARM's LinkedAuthorizationFailed otherwise."""
    env.rg("rg")
    subnet = env.subnet("rg")
    nic_body = {"location": "eastus", "properties": {"ipConfigurations": [
        {"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}]}}
    arm.world.config.rbac = True
    writer = ["Microsoft.Network/networkInterfaces/write", "Microsoft.Network/networkInterfaces/read"]
    arm.world.rbac = _roles(arm, "nic-writer", writer)
    network = arm.network_client(credential=arm.credential("nic-writer"), retry_total=0)
    with pytest.raises(HttpResponseError) as e:
        network.network_interfaces.begin_create_or_update("rg", "nic1", nic_body)
    assert e.value.status_code == 403 and e.value.error.code == "LinkedAuthorizationFailed"
    assert "'Microsoft.Network/virtualNetworks/subnets/join/action'" in e.value.error.message
    assert f"linked scope(s) '{subnet}'" in e.value.error.message
    arm.world.rbac = _roles(arm, "nic-writer", [*writer, "Microsoft.Network/virtualNetworks/subnets/join/action"])
    assert network.network_interfaces.begin_create_or_update("rg", "nic1", nic_body).result().name == "nic1"


def _grants(arm: ArmSim, principal: str, actions: list[str], linked: list[str]) -> dict[str, object]:
    """``actions`` on resource group rg (where the NIC or VM is written), ``linked`` on rg-shared only (where the
    referenced NSG, ASG, load balancer or identity is): a linked check asks on the referenced resource's scope."""
    sub = f"/subscriptions/{arm.subscription_id}/resourceGroups"
    return {"roleDefinitions": [{"id": "writer", "permissions": [{"actions": actions, "notActions": []}]},
                                {"id": "joiner", "permissions": [{"actions": linked, "notActions": []}]}],
            "roleAssignments": [{"principalId": principal, "roleDefinitionId": "writer", "scope": f"{sub}/rg"},
                                {"principalId": principal, "roleDefinitionId": "joiner", "scope": f"{sub}/rg-shared"}]}


_NIC_WRITER = ["Microsoft.Network/networkInterfaces/write", "Microsoft.Network/networkInterfaces/read",
               "Microsoft.Network/virtualNetworks/subnets/join/action"]
_LINKED_NIC = {  # reference → (where it goes in the NIC body, the action ARM checks on it)
    "networkSecurityGroups/nsg1": ("nic", "networkSecurityGroup",
                                   "Microsoft.Network/networkSecurityGroups/join/action"),
    "applicationSecurityGroups/asg1": ("ipconfig", "applicationSecurityGroups",
                                       "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action"),
    "loadBalancers/lb1/backendAddressPools/pool1": ("ipconfig", "loadBalancerBackendAddressPools",
                                                    "Microsoft.Network/loadBalancers/backendAddressPools/join/action"),
    "loadBalancers/lb1/inboundNatRules/rdp": ("ipconfig", "loadBalancerInboundNatRules",
                                              "Microsoft.Network/loadBalancers/inboundNatRules/join/action"),
    "applicationGateways/agw1/backendAddressPools/pool1": (
        "ipconfig", "applicationGatewayBackendAddressPools",
        "Microsoft.Network/applicationGateways/backendAddressPools/join/action"),
}


@pytest.mark.parametrize("ref", sorted(_LINKED_NIC))
def test_rbac_linked_checks_on_a_nics_nsg_asg_pools_and_nat_rules(arm: ArmSim, env: Env, ref: str) -> None:
    """A NIC joining an NSG, an application security group or a load-balancer backend pool needs that join
    action on the referenced resource (armsim does not model them: a reference is taken on trust once its
    resource group exists)."""
    env.rg("rg")
    env.rg("rg-shared")
    ref_id = f"{env.rg_id('rg-shared')}/providers/Microsoft.Network/{ref}"
    where, key, action = _LINKED_NIC[ref]
    ipconfig: dict[str, object] = {"subnet": {"id": env.subnet("rg")}}
    props: dict[str, object] = {"ipConfigurations": [{"name": "ipconfig1", "properties": ipconfig}]}
    if where == "nic":
        props[key] = {"id": ref_id}
    else:
        ipconfig[key] = [{"id": ref_id}]
    body = {"location": "eastus", "properties": props}
    arm.world.config.rbac = True
    arm.world.rbac = _grants(arm, "nic-writer", _NIC_WRITER, [])
    network = arm.network_client(credential=arm.credential("nic-writer"), retry_total=0)
    with pytest.raises(HttpResponseError) as e:
        network.network_interfaces.begin_create_or_update("rg", "nic1", body)
    assert e.value.status_code == 403 and e.value.error.code == "LinkedAuthorizationFailed"
    assert e.value.error.message == (
        "The client 'nic-writer' with object id 'nic-writer' has permission to perform action "
        "'Microsoft.Network/networkInterfaces/write' on scope "
        f"'{env.nic_id('rg', 'nic1')}'; however, it does not have permission to perform action(s) '{action}' on "
        f"the linked scope(s) '{ref_id}' (respectively) or the linked scope(s) are invalid.")
    assert env.arm.world.sub(env.sub).network.nics == {}  # nothing written
    arm.world.rbac = _grants(arm, "nic-writer", _NIC_WRITER, [action])
    nic = network.network_interfaces.begin_create_or_update("rg", "nic1", body).result()
    got = nic.network_security_group if where == "nic" else getattr(
        nic.ip_configurations[0], {"applicationSecurityGroups": "application_security_groups",
                                   "loadBalancerBackendAddressPools": "load_balancer_backend_address_pools",
                                   "loadBalancerInboundNatRules": "load_balancer_inbound_nat_rules",
                                   "applicationGatewayBackendAddressPools":
                                       "application_gateway_backend_address_pools"}[key])[0]
    assert got.id.lower() == ref_id.lower()


def test_rbac_linked_check_on_a_vms_user_assigned_identity(arm: ArmSim, env: Env) -> None:
    """A VM with a user-assigned identity needs userAssignedIdentities/assign/action on it; the built-in Managed
    Identity Operator's ``userAssignedIdentities/*/assign/action`` grants it (a ``/*/`` may match no segment)."""
    env.rg("rg")
    env.rg("rg-shared")
    uami = f"{env.rg_id('rg-shared')}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
    body = env.vm_body("rg", "vm1")
    body["identity"] = {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uami: {}}}
    writer = ["Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/virtualMachines/read",
              "Microsoft.Network/networkInterfaces/join/action"]
    arm.world.config.rbac = True
    arm.world.rbac = _grants(arm, "vm-writer", writer, ["Microsoft.ManagedIdentity/userAssignedIdentities/read"])
    compute = arm.compute_client(credential=arm.credential("vm-writer"), retry_total=0)
    with pytest.raises(HttpResponseError) as e:
        compute.virtual_machines.begin_create_or_update("rg", "vm1", body)
    assert e.value.status_code == 403 and e.value.error.code == "LinkedAuthorizationFailed"
    assert ("does not have permission to perform action(s) "
            f"'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' on the linked scope(s) '{uami}'"
            ) in e.value.error.message
    assert arm.world.sub(env.sub).compute.vms == {}
    for granted in ("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
                    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action"):
        arm.world.rbac = _grants(arm, "vm-writer", writer, [granted])
        vm = compute.virtual_machines.begin_create_or_update("rg", "vm1", body).result()
        assert [k.lower() for k in vm.identity.user_assigned_identities] == [uami.lower()], granted


def test_references_to_unmodelled_resources_need_their_resource_group(arm: ArmSim, env: Env) -> None:
    """NSGs, ASGs, load balancers and user-assigned identities are not modelled: a reference of the right type in
    an existing resource group is accepted, anything else is refused the way Azure refuses a missing one."""
    env.rg("rg")
    gone = f"{env.rg_id('rg-gone')}/providers/Microsoft.Network/networkSecurityGroups/nsg1"
    wrong_type = f"{env.rg_id('rg')}/providers/Microsoft.Network/publicIPAddresses/nsg1"
    for ref in (gone, wrong_type):
        with pytest.raises(HttpResponseError) as e:
            env.network.network_interfaces.begin_create_or_update("rg", "nic1", {"location": "eastus", "properties": {
                "networkSecurityGroup": {"id": ref},
                "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": env.subnet("rg")}}}]}})
        assert e.value.status_code == 400 and e.value.error.code == "InvalidResourceReference", ref
        assert e.value.error.message.startswith(
            f"Resource {ref} referenced by resource {env.nic_id('rg', 'nic1')} was not found.")
    uami = f"{env.rg_id('rg-gone')}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
    body = env.vm_body("rg", "vm1")
    body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {uami: {}}}
    with pytest.raises(HttpResponseError) as e2:
        env.compute.virtual_machines.begin_create_or_update("rg", "vm1", body)
    assert e2.value.status_code == 400 and e2.value.error.code == "FailedIdentityOperation"
    assert f"Resource '{uami}' was not found." in e2.value.error.message
