"""armsim's Key Vault data plane through the real ``azure-keyvault-secrets`` SecretClient over HTTPS: versions,
errors in Key Vault's shapes, the challenge protocol, token audience, RBAC data actions, the control API,
persistence, and secret values kept out of armsim's logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.keyvault.secrets._shared import HttpChallengeCache

from armsim import ArmSim
from armsim.authorization import rbac
from armsim.errors import Conflict
from armsim.keyvault.models import find_vault
from armsim.state import World

VALUE = "Kv-Value-3vQx8-NEVER-LOGGED!"
SECRETS_USER = {"id": "kv-secrets-user", "roleName": "Key Vault Secrets User",
                "permissions": [{"actions": [], "dataActions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action",
                                                                "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]}]}
OWNER = {"id": "owner", "roleName": "Owner", "permissions": [{"actions": ["*"], "notActions": []}]}


def _raw(arm: ArmSim, path: str, *, api: str | None = "7.6", token: str | None = None) -> requests.Response:
    params = {"api-version": api} if api else {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{arm.endpoint}{path}", params=params, headers=headers, verify=arm.ca_bundle, timeout=10)


def _vault_token(arm: ArmSim, principal: str = "armsim-user") -> str:
    return str(arm.credential(principal).get_token("https://vault.azure.net/.default").token)


def _grant(arm: ArmSim, principal: str, role: dict[str, Any], scope: str) -> None:
    with arm.world.lock:
        arm.world.config.rbac = True
        arm.world.rbac = rbac.validate({
            "roleDefinitions": [*arm.world.rbac["roleDefinitions"], role],
            "roleAssignments": [*arm.world.rbac["roleAssignments"],
                                {"principalId": principal, "roleDefinitionId": role["id"], "scope": scope}]})


def test_set_get_latest_and_by_version_and_list_versions(arm: ArmSim) -> None:
    first = arm.set_secret("kv-app", "admin-password", "first-value")
    client = arm.secret_client("kv-app", retry_total=0)
    assert client.vault_url == f"{arm.endpoint}/keyvault/kv-app"  # the SDK keeps the path of vault_url
    second = client.set_secret("admin-password", VALUE, content_type="text/plain", tags={"owner": "ops"})
    assert second.value == VALUE

    latest = client.get_secret("admin-password")
    assert latest.value == VALUE and latest.properties.version == second.properties.version
    assert latest.properties.content_type == "text/plain" and latest.properties.tags == {"owner": "ops"}
    assert latest.properties.enabled is True and latest.properties.created_on is not None
    # ids keep Azure's form (the SDK rejects an id with a path prefix)
    assert latest.id == f"https://kv-app.vault.azure.net/secrets/admin-password/{second.properties.version}"
    assert latest.properties.vault_url == "https://kv-app.vault.azure.net"

    first_version = first.rsplit("/", 1)[1]
    assert client.get_secret("admin-password", first_version).value == "first-value"
    versions = [p.version for p in client.list_properties_of_secret_versions("admin-password")]
    assert versions == [first_version, second.properties.version]
    assert [p.name for p in client.list_properties_of_secrets()] == ["admin-password"]


def test_list_versions_pages_through_next_links(arm: ArmSim) -> None:
    made = [arm.set_secret("kv-paging", "rotated", f"value-{i}").rsplit("/", 1)[1] for i in range(7)]
    client = arm.secret_client("kv-paging", retry_total=0)
    pages = client.list_properties_of_secret_versions("rotated", max_page_size=3).by_page()
    assert [len(list(p)) for p in pages] == [3, 3, 1]
    listed = [p.version for p in client.list_properties_of_secret_versions("rotated", max_page_size=3)]
    assert listed == made
    lists = [r for r in arm.requests() if r["path"].endswith("/versions") and r["status"] == 200]
    assert any("$skiptoken" in r["query"] for r in lists), "a second page must come from the nextLink"


def test_secret_not_found_in_key_vaults_shape(arm: ArmSim) -> None:
    arm.set_secret("kv-app", "present", "x")
    client = arm.secret_client("kv-app", retry_total=0)
    with pytest.raises(ResourceNotFoundError) as e:
        client.get_secret("absent")
    assert e.value.status_code == 404 and e.value.error.code == "SecretNotFound"
    assert e.value.error.message.startswith("A secret with (name/id) absent was not found in this key vault.")
    with pytest.raises(ResourceNotFoundError) as e:
        client.get_secret("present", "0123456789abcdef0123456789abcdef")
    assert "(name/id) present/0123456789abcdef0123456789abcdef was not found" in e.value.error.message
    assert list(client.list_properties_of_secret_versions("absent")) == []


def test_request_without_token_gets_the_challenge(arm: ArmSim) -> None:
    arm.set_secret("kv-app", "admin", VALUE)
    resp = _raw(arm, "/keyvault/kv-app/secrets/admin")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{arm.tenant_id}", '
        'resource="https://vault.azure.net"')
    assert resp.json()["error"] == {"code": "Unauthorized",
                                    "message": "AKV10000: Request is missing a Bearer or PoP token."}
    assert VALUE not in resp.text
    # the SDK, with no challenge cached for armsim's host (its cache is process-wide), sends the bare request,
    # reads the challenge, gets a token for the resource it names and sends the request again
    HttpChallengeCache.clear()
    mark = arm.last_request
    assert arm.secret_client("kv-app", retry_total=0).get_secret("admin").value == VALUE
    sent = [(r["status"], r["principal"]) for r in arm.requests(mark)]
    assert sent == [(401, "anonymous"), (200, "armsim-user")]


def test_api_version_is_required_and_must_be_known(arm: ArmSim) -> None:
    arm.set_secret("kv-app", "admin", VALUE)
    token = _vault_token(arm)
    missing = _raw(arm, "/keyvault/kv-app/secrets/admin", api=None, token=token)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "BadParameter"
    assert "api-version" in missing.json()["error"]["message"]
    unknown = _raw(arm, "/keyvault/kv-app/secrets/admin", api="1999-01-01", token=token)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"].startswith("The specified version (1999-01-01) is not recognized.")
    assert _raw(arm, "/keyvault/kv-app/secrets/admin", api="7.4", token=token).json()["value"] == VALUE


def test_a_token_for_arm_is_refused_with_invalid_audience(arm: ArmSim) -> None:
    arm.set_secret("kv-app", "admin", VALUE)
    arm_token = arm.credential().get_token("https://management.azure.com/.default").token
    resp = _raw(arm, "/keyvault/kv-app/secrets/admin", token=arm_token)
    assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers
    assert resp.json()["error"]["message"] == (
        "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com.")
    # through the SDK, with a credential that hands out ARM tokens whatever it is asked: ClientAuthenticationError
    class ArmTokensOnly:
        def get_token(self, *scopes: str, **kwargs: object) -> object:
            return arm.credential().get_token("https://management.azure.com/.default")

    with pytest.raises(ClientAuthenticationError):
        arm.secret_client("kv-app", credential=ArmTokensOnly(), retry_total=0).get_secret("admin")
    garbage = _raw(arm, "/keyvault/kv-app/secrets/admin", token="not-a-jwt")
    assert garbage.status_code == 401


def test_rbac_needs_the_get_secret_data_action(arm: ArmSim) -> None:
    url = arm.set_secret("kv-app", "admin", VALUE)
    vault = find_vault(arm.world, "kv-app")
    assert vault is not None
    sub_scope = f"/subscriptions/{arm.subscription_id}"
    # Owner's actions "*" covers ARM but grants no data action, as in Azure
    _grant(arm, "owner-principal", OWNER, sub_scope)
    with pytest.raises(HttpResponseError) as e:
        arm.secret_client("kv-app", arm.credential("owner-principal"), retry_total=0).get_secret("admin")
    assert e.value.status_code == 403 and e.value.error.code == "Forbidden"
    assert e.value.error.innererror == {"code": "ForbiddenByRbac"}
    message = e.value.error.message
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'" in message
    assert f"Resource: '{vault.scope('admin').lower()}'" in message and "oid=owner-principal" in message
    assert VALUE not in message

    # Key Vault Secrets User on the vault: get and list, but not set
    _grant(arm, "reader", SECRETS_USER, vault.id)
    reader = arm.secret_client("kv-app", arm.credential("reader"), retry_total=0)
    assert reader.get_secret("admin").value == VALUE
    assert reader.get_secret("admin", url.rsplit("/", 1)[1]).value == VALUE
    assert len(list(reader.list_properties_of_secret_versions("admin"))) == 1
    with pytest.raises(HttpResponseError) as e:
        reader.set_secret("admin", "overwrite")
    assert e.value.status_code == 403 and "secrets/setSecret/action" in e.value.error.message
    assert reader.get_secret("admin").value == VALUE


def test_rbac_data_action_scoped_to_one_secret_and_not_data_actions(arm: ArmSim) -> None:
    arm.set_secret("kv-app", "admin", VALUE)
    arm.set_secret("kv-app", "other", "other-value")
    vault = find_vault(arm.world, "kv-app")
    assert vault is not None
    _grant(arm, "narrow", SECRETS_USER, vault.scope("admin"))
    narrow = arm.secret_client("kv-app", arm.credential("narrow"), retry_total=0)
    assert narrow.get_secret("admin").value == VALUE
    with pytest.raises(HttpResponseError) as e:
        narrow.get_secret("other")
    assert e.value.error.innererror == {"code": "ForbiddenByRbac"}
    denied = {"id": "all-but-get", "permissions": [{"dataActions": ["Microsoft.KeyVault/vaults/secrets/*"],
                                                    "notDataActions": ["*/getSecret/action"]}]}
    _grant(arm, "lister", denied, vault.id)
    lister = arm.secret_client("kv-app", arm.credential("lister"), retry_total=0)
    assert {p.name for p in lister.list_properties_of_secrets()} == {"admin", "other"}
    with pytest.raises(HttpResponseError) as e:
        lister.get_secret("admin")
    assert e.value.status_code == 403


def test_rbac_allowed_checks_data_actions_only_for_data_plane(arm: ArmSim) -> None:
    _grant(arm, "p", SECRETS_USER, f"/subscriptions/{arm.subscription_id}")
    scope = f"/subscriptions/{arm.subscription_id}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/s"
    action = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
    assert rbac.allowed(arm.world, "p", action, scope, data=True)
    assert not rbac.allowed(arm.world, "p", action, scope)  # the same string as a control-plane action
    assert not rbac.allowed(arm.world, "someone-else", action, scope, data=True)


def test_disabled_secret_is_forbidden(arm: ArmSim) -> None:
    arm.set_secret("kv-app", "admin", VALUE, enabled=False)
    with pytest.raises(HttpResponseError) as e:
        arm.secret_client("kv-app", retry_total=0).get_secret("admin")
    assert e.value.status_code == 403 and e.value.error.innererror == {"code": "SecretDisabled"}


def test_bad_secret_name_and_unknown_route(arm: ArmSim) -> None:
    arm.create_vault("kv-app")
    token = _vault_token(arm)
    bad = _raw(arm, "/keyvault/kv-app/secrets/not_valid", token=token)
    assert bad.status_code == 400 and bad.json()["error"] == {
        "code": "BadParameter", "message": "The request URI contains an invalid name: not_valid"}
    unknown = _raw(arm, "/keyvault/kv-app/keys/k", token=token)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"


def test_unknown_vault_drops_the_connection_like_an_unresolvable_name(arm: ArmSim) -> None:
    arm.create_vault("kv-app")
    with pytest.raises(ServiceResponseError):
        arm.secret_client("kv-nowhere", retry_total=0).get_secret("admin")
    last = arm.requests()[-1]
    assert last["path"].startswith("/keyvault/kv-nowhere/") and last["dropped"] and last["status"] == 0


def test_fault_rules_apply_to_key_vault_paths(arm: ArmSim) -> None:
    arm.set_secret("kv-app", "admin", VALUE)
    arm.add_fault(method="GET", path="/keyvault/kv-app/secrets/admin", action="error", status=503,
                  error={"code": "ServiceUnavailable", "message": "Injected."})
    with pytest.raises(HttpResponseError) as e:
        arm.secret_client("kv-app", retry_total=0).get_secret("admin")
    assert e.value.status_code == 503 and e.value.error.code == "ServiceUnavailable"


def test_secret_values_stay_out_of_armsims_logs(arm: ArmSim) -> None:
    arm.create_vault("kv-app")
    client = arm.secret_client("kv-app", retry_total=0)
    client.set_secret("admin", VALUE)
    assert client.get_secret("admin").value == VALUE
    requests_log = requests.get(f"{arm.endpoint}/_armsim/requests", verify=arm.ca_bundle, timeout=10).text
    assert "/keyvault/kv-app/secrets/admin" in requests_log and VALUE not in requests_log
    with arm.world.lock:
        activity = json.dumps([s.activity for s in arm.world.subscriptions.values()])
    assert VALUE not in activity and "/keyvault/" not in activity  # data plane is not in the activity log
    listing = requests.get(f"{arm.endpoint}/_armsim/keyvault", verify=arm.ca_bundle, timeout=10).json()
    assert listing["vaults"][0]["secrets"]["admin"] and VALUE not in json.dumps(listing)


def test_control_api_creates_vaults_and_secrets(arm: ArmSim) -> None:
    base = f"{arm.endpoint}/_armsim/keyvault"
    made = requests.put(f"{base}/kv-ops", json={"resourceGroup": "rg-sec", "location": "westeurope"},
                        verify=arm.ca_bundle, timeout=10).json()
    assert made["id"] == (f"/subscriptions/{arm.subscription_id}/resourceGroups/rg-sec/providers/"
                          "Microsoft.KeyVault/vaults/kv-ops")
    assert made["armsimVaultUrl"] == arm.vault_url("kv-ops") and made["vaultUri"] == "https://kv-ops.vault.azure.net"
    put = requests.put(f"{base}/kv-ops/secrets/admin", json={"value": VALUE}, verify=arm.ca_bundle, timeout=10)
    assert put.status_code == 200 and VALUE not in put.text
    assert put.json()["url"] == f"{arm.vault_url('kv-ops')}/secrets/admin/{put.json()['version']}"
    assert arm.secret_client("kv-ops", retry_total=0).get_secret("admin").value == VALUE
    bad = requests.put(f"{base}/kv-ops/secrets/admin", json={"value": 7}, verify=arm.ca_bundle, timeout=10)
    assert bad.status_code == 400
    bad_name = requests.put(f"{base}/x", json={}, verify=arm.ca_bundle, timeout=10)
    assert bad_name.status_code == 400 and "Vault name 'x' is invalid" in bad_name.json()["error"]["message"]


def test_vault_names_are_global(arm: ArmSim) -> None:
    arm.create_vault("kv-app")
    other = "22222222-3333-4444-5555-666666666666"
    with arm.world.lock:
        arm.world.add_subscription(other)
    with pytest.raises(Conflict, match="already in use"):
        arm.create_vault("kv-app", subscription=other)


def test_vaults_persist_with_the_world_state(arm: ArmSim) -> None:
    url = arm.set_secret("kv-app", "admin", VALUE)
    arm.set_secret("kv-app", "admin", "second")
    with arm.world.lock:
        saved = json.loads(json.dumps(arm.world.to_state()))
    restored = World()
    restored.load_state(saved)
    vault = find_vault(restored, "kv-app")
    assert vault is not None
    secret, version = vault.get("admin", url.rsplit("/", 1)[1])
    assert version.value == VALUE and secret.current.value == "second"
