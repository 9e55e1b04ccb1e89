"""The from-image admin secret from Key Vault: references parsed and checked at plan time, read through the same
credential as ARM (the managed identity, via DefaultAzureCredential in the CLI) from armsim's Key Vault with the
real SecretClient, resolved before any write, and never printed, logged, journaled or written to a plan file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from remediation_helpers import PASSWORD, Rig, assert_converged, before, seed

from armsim.authorization import rbac
from armsim.identity import SYSTEM_IDENTITY
from armsim.keyvault.models import find_vault
from runbooks.azure import Azure, Connection, parse_secret_ref, read_secret
from runbooks.errors import SecretMissing, UsageError
from runbooks.observe import VmRef
from runbooks.remediate import plan_remediation, remediate

# Distinct from the environment's PASSWORD: finding either where it must not be is a leak.
KV_PASSWORD = "Kv-Admin-9pLw2-NEVER-SHOWN!"
VM = "rg-demo/app-01"
GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"


def _ref(rig: Rig, name: str = "vm-admin", vault: str = "kv-ops") -> str:
    return f"{rig.arm.vault_url(vault)}/secrets/{name}"


def _kv_requests(rig: Rig, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in rig.arm.requests(since) if r["path"].startswith("/keyvault/")]


def _leaks(rig: Rig, *outputs: str, files: list[Path]) -> list[str]:
    """Every place one of the two secret values shows up: CLI output, files, armsim's logs."""
    found = []
    places = {f"output {i}": out for i, out in enumerate(outputs)}
    places["armsim request log"] = json.dumps(rig.arm.requests())
    with rig.arm.world.lock:
        places["armsim activity log"] = json.dumps([s.activity for s in rig.arm.world.subscriptions.values()])
    for path in files:
        places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for where, text in places.items():
        found += [f"{where}" for secret in (KV_PASSWORD, PASSWORD) if secret in text]
    return found


def _rbac(rig: Rig, *, data_action: bool) -> None:
    """--rbac on: the managed identity is Owner of the subscription (ARM, no data actions), and with
    ``data_action`` also Key Vault Secrets User on the vault (only getSecret)."""
    vault = find_vault(rig.arm.world, "kv-ops")
    assert vault is not None
    roles = [{"id": "owner", "permissions": [{"actions": ["*"]}]},
             {"id": "kv-secrets-user", "permissions": [{"dataActions": [GET_SECRET]}]}]
    assignments = [{"principalId": principal, "roleDefinitionId": "owner", "scope": f"/subscriptions/{rig.sub}"}
                   for principal in (SYSTEM_IDENTITY, "armsim-user")]  # the CLI's identity and the test's own
    if data_action:
        assignments.append({"principalId": SYSTEM_IDENTITY, "roleDefinitionId": "kv-secrets-user", "scope": vault.id})
    with rig.arm.world.lock:
        rig.arm.world.config.rbac = True
        rig.arm.world.rbac = rbac.validate({"roleDefinitions": roles, "roleAssignments": assignments})


# --- references --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("ref", "expected"), [
    ("env:RUNBOOKS_ADMIN_PASSWORD", {"env": "RUNBOOKS_ADMIN_PASSWORD"}),
    ("https://kv-prod.vault.azure.net/secrets/vm-admin",
     {"vault_url": "https://kv-prod.vault.azure.net", "name": "vm-admin", "version": None}),
    ("https://kv-prod.vault.azure.net/secrets/vm-admin/0123456789abcdef0123456789abcdef",
     {"vault_url": "https://kv-prod.vault.azure.net", "name": "vm-admin",
      "version": "0123456789abcdef0123456789abcdef"}),
    ("https://127.0.0.1:8443/keyvault/kv-ops/secrets/vm-admin/",
     {"vault_url": "https://127.0.0.1:8443/keyvault/kv-ops", "name": "vm-admin", "version": None}),
])
def test_secret_references_parse(ref: str, expected: dict[str, Any]) -> None:
    parsed = parse_secret_ref(ref)
    assert {k: getattr(parsed, k) for k in expected} == expected


@pytest.mark.parametrize("ref", [
    "env:", "env:1ABC", "file:/etc/passwd", "keyvault:kv-prod/vm-admin", "http://kv-prod.vault.azure.net/secrets/a",
    "https://kv-prod.vault.azure.net/keys/vm-admin", "https://kv-prod.vault.azure.net/secrets/",
    "https://kv-prod.vault.azure.net/secrets/under_score", "https://kv-prod.vault.azure.net/secrets/a/not-a-version",
    "https://kv-prod.vault.azure.net/prefix/secrets/a", "https://user@kv-prod.vault.azure.net/secrets/a",
    "https://kv-prod.vault.azure.net/secrets/a?api-version=7.4",
])
def test_malformed_references_are_usage_errors(ref: str) -> None:
    shown = f"'{ref}'" if ref.startswith(("env:", "https://")) else "(not shown: it may be the secret itself)"
    with pytest.raises(UsageError, match=re.escape(f"bad secret reference {shown}: use env:NAME or a Key Vault")):
        parse_secret_ref(ref)


def test_a_password_given_as_the_reference_is_not_echoed() -> None:
    with pytest.raises(UsageError) as e:
        parse_secret_ref("Hunter2-Passw0rd!")
    assert "Hunter2" not in str(e.value)


def test_a_key_vault_reference_needs_the_azure_connection() -> None:
    with pytest.raises(TypeError, match="needs the Azure connection"):
        read_secret("https://kv-prod.vault.azure.net/secrets/vm-admin")


def test_azure_vaults_keep_the_sdks_checks_and_other_vaults_use_the_connections_ca(mocker: Any) -> None:
    """Which SecretClient settings each kind of vault gets (a real vault cannot be reached from a test)."""
    made = mocker.patch("azure.keyvault.secrets.SecretClient")
    az = Azure(Connection("sub", "https://127.0.0.1:1", "/tmp/armsim-ca.pem"), credential=object())
    az.secret_client("https://kv-prod.vault.azure.net")
    az.secret_client("https://127.0.0.1:1/keyvault/kv-ops")
    az.secret_client("https://127.0.0.1:1/keyvault/kv-ops")  # made once per vault
    (real_args, real_kwargs), (_, sim_kwargs) = made.call_args_list
    assert real_args[0] == "https://kv-prod.vault.azure.net" and real_args[1] is az.credential
    assert "verify_challenge_resource" not in real_kwargs and "connection_verify" not in real_kwargs
    assert sim_kwargs["verify_challenge_resource"] is False and sim_kwargs["connection_verify"] == "/tmp/armsim-ca.pem"


# --- end to end -------------------------------------------------------------------------------------------
def test_cli_remediates_from_image_with_a_key_vault_secret_that_goes_nowhere(rig: Rig, tmp_path: Path) -> None:
    """The real CLI, credentials from DefaultAzureCredential (armsim's managed-identity endpoint) and no admin
    password in the environment at all: the VM is recreated from its image with the Key Vault secret."""
    seed(rig, VM)
    b = before(rig, VM)
    rig.arm.set_secret("kv-ops", "vm-admin", "an-older-version")
    rig.arm.set_secret("kv-ops", "vm-admin", KV_PASSWORD)
    ref = _ref(rig)
    env = rig.env()
    env.pop("RUNBOOKS_ADMIN_PASSWORD")

    mark = rig.arm.last_request
    dry = rig.invoke("remediate", "--vm", VM,
                     "--scenario", "from-image", "--dry-run", "--json", "--admin-secret", ref, env=env)
    assert dry.returncode == 0, dry.stderr
    assert _kv_requests(rig, mark) == [], "a dry run must not read the secret"
    shown, _ = json.JSONDecoder().raw_decode(dry.stdout)  # the plan, then the "Dry run: …" line
    assert json.dumps({"$secret": ref}) in json.dumps(shown)

    plan_file = tmp_path / "plan.json"
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", VM,
                      "--scenario", "from-image", "--yes", "--admin-secret", ref, "--plan-out", str(plan_file), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Remediated {VM}" in done.stdout
    assert_converged(rig, b, "from-image")

    # read by the managed identity, first before any write (the pre-flight), again for the create call
    reads = [r for r in _kv_requests(rig, mark) if r["status"] == 200]
    assert reads and {r["principal"] for r in reads} == {SYSTEM_IDENTITY}
    assert all(r["path"] == "/keyvault/kv-ops/secrets/vm-admin/" for r in reads)
    first_write = min(w["seq"] for w in rig.arm.writes(mark))
    assert reads[0]["seq"] < first_write

    assert json.dumps({"$secret": ref}) in json.dumps(json.loads(plan_file.read_text()))
    files = [plan_file, *(p for p in rig.home.rglob("*") if p.is_file())]
    assert any(p.name == "journal.jsonl" for p in files) and any(p.name == "plan.json" for p in files)
    assert _leaks(rig, dry.stdout, dry.stderr, done.stdout, done.stderr, files=files) == []


def test_library_sends_the_pinned_version_only_in_the_create_call(rig: Rig, mocker: Any) -> None:
    """The library path (as an Automation job runs it): a reference to one version reads that version, and the
    value appears in the create call's arguments, in memory, and in nothing the run writes."""
    seed(rig, VM)
    pinned = rig.arm.set_secret("kv-ops", "vm-admin", KV_PASSWORD)
    rig.arm.set_secret("kv-ops", "vm-admin", "a-newer-version")
    az = Azure(Connection(rig.sub, rig.arm.endpoint, rig.arm.ca_bundle), credential=rig.arm.credential())
    spy = mocker.spy(az.compute.virtual_machines, "begin_create_or_update")
    _, plan = plan_remediation(az, VmRef.parse(VM), "from-image", admin_secret=pinned)
    assert KV_PASSWORD not in plan.dumps()
    remediate(az, plan, rig.hooks(), yes=True)
    (sent,) = [c.kwargs["parameters"] for c in spy.call_args_list]
    assert sent["properties"]["osProfile"]["adminPassword"] == KV_PASSWORD
    files = [p for p in rig.home.rglob("*") if p.is_file()]
    assert _leaks(rig, "\n".join(rig.progress), files=files) == []


UNREADABLE = [
    ("absent-secret", r"admin secret https://\S+/keyvault/kv-ops/secrets/absent: no such secret in the vault "
                      r"\(SecretNotFound\)$"),
    ("absent-version", r"kv-ops/secrets/vm-admin/0{32}: no such secret version in the vault"),
    ("unknown-vault", r"admin secret https://\S+/keyvault/kv-nowhere/secrets/vm-admin: cannot reach Key Vault"),
    ("disabled", r"Key Vault refused to read it \(Forbidden/SecretDisabled\)"),
    ("no-data-action", r"Key Vault refused to read it \(Forbidden/ForbiddenByRbac: the identity needs the data "
                       r"action Microsoft.KeyVault/vaults/secrets/getSecret/action"),
]


@pytest.mark.parametrize(("case", "error"), UNREADABLE, ids=[case for case, _ in UNREADABLE])
def test_unreadable_secret_fails_before_any_write(rig: Rig, case: str, error: str) -> None:
    seed(rig, VM)
    rig.arm.set_secret("kv-ops", "vm-admin", KV_PASSWORD, enabled=case != "disabled")
    ref = {"absent-secret": _ref(rig, "absent"), "absent-version": _ref(rig) + "/" + "0" * 32,
           "unknown-vault": _ref(rig, vault="kv-nowhere")}.get(case, _ref(rig))
    if case == "no-data-action":
        _rbac(rig, data_action=False)
    disks, nics = rig.disk_contents(), rig.nic_ids()
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", VM, "--scenario", "from-image", "--yes", "--admin-secret", ref)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(error, lines[0]), lines[0]
    assert rig.arm.writes(mark) == [], "nothing may be written when the secret cannot be read"
    assert rig.disk_contents() == disks and rig.nic_ids() == nics
    assert rig.observe(VM).generalized
    assert _leaks(rig, done.stdout, done.stderr, files=[p for p in rig.home.rglob("*") if p.is_file()]) == []


def test_granting_the_data_action_lets_the_same_command_succeed(rig: Rig) -> None:
    seed(rig, VM)
    rig.arm.set_secret("kv-ops", "vm-admin", KV_PASSWORD)
    _rbac(rig, data_action=False)
    args = ("remediate", "--vm", VM, "--scenario", "from-image", "--yes", "--admin-secret", _ref(rig))
    refused = rig.invoke(*args)
    assert refused.returncode == 2 and "ForbiddenByRbac" in refused.stderr
    _rbac(rig, data_action=True)
    done = rig.invoke(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Remediated {VM}" in done.stdout


def test_bad_reference_syntax_fails_at_plan_time_even_in_a_dry_run(rig: Rig) -> None:
    seed(rig, VM)
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", VM, "--dry-run", "--admin-secret", "https://kv-ops.vault.azure.net/keys/k")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: bad secret reference 'https://kv-ops.vault.azure.net/keys/k': use env:NAME "
                                   "or a Key Vault secret URL https://<vault>.vault.azure.net/secrets/<name>"
                                   "[/<version>]")
    assert rig.arm.writes(mark) == [] and _kv_requests(rig, mark) == []


def test_a_tampered_reference_in_a_saved_plan_is_refused_before_any_write(rig: Rig, tmp_path: Path) -> None:
    seed(rig, VM)
    _, plan = plan_remediation(rig.az(), VmRef.parse(VM), "from-image")
    text = plan.dumps()
    assert '"$secret": "env:RUNBOOKS_ADMIN_PASSWORD"' in text
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(text.replace('"$secret": "env:RUNBOOKS_ADMIN_PASSWORD"', '"$secret": "file:/etc/shadow"'))
    mark = rig.arm.last_request
    done = rig.invoke("apply", "--plan", str(plan_file), "--yes")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "is damaged" in done.stderr and "bad secret reference (not shown" in done.stderr
    assert "/etc/shadow" not in done.stderr
    assert rig.arm.writes(mark) == []


def test_secret_missing_names_the_reference_never_a_value(rig: Rig) -> None:
    """In-process: the error for a secret that exists but is disabled carries the reference only."""
    rig.arm.set_secret("kv-ops", "vm-admin", KV_PASSWORD, enabled=False)
    az = Azure(Connection(rig.sub, rig.arm.endpoint, rig.arm.ca_bundle), credential=rig.arm.credential())
    with pytest.raises(SecretMissing) as info:
        read_secret(_ref(rig), az)
    assert _ref(rig) in str(info.value) and KV_PASSWORD not in str(info.value)
