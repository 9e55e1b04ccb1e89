"""Key Vault part of the control API (no auth; values go in, never come out):

    GET  /_armsim/keyvault                            vaults (names, ids, secret names and versions)
    PUT  /_armsim/keyvault/{vault}                    create {"resourceGroup"?, "location"?, "subscription"?}
    GET  /_armsim/keyvault/{vault}                    one vault
    PUT  /_armsim/keyvault/{vault}/secrets/{name}     new version {"value", "enabled"?, "contentType"?}
                                                      (creates the vault if needed)
"""

from __future__ import annotations

from typing import Any

from armsim.errors import BadRequest, NotFound
from armsim.keyvault.models import DEFAULT_RESOURCE_GROUP, Vault, create_vault, find_vault
from armsim.state import World


def set_secret(world: World, vault_name: str, name: str, value: str, *, enabled: bool = True,
               content_type: str | None = None, endpoint: str = "") -> dict[str, Any]:
    """Store a new version of a secret; the answer names it (id, version, armsim URL) without its value."""
    vault = find_vault(world, vault_name) or create_vault(world, vault_name)
    secret, version = vault.set_secret(name, value, world.clock(), enabled=enabled, content_type=content_type)
    world.dirty = True
    return {"id": f"{vault.uri}/secrets/{secret.name}/{version.version}", "version": version.version,
            "url": f"{endpoint}/keyvault/{vault.name}/secrets/{secret.name}/{version.version}"}


def handle(world: World, method: str, parts: list[str], body: Any, endpoint: str) -> dict[str, Any]:
    """``parts`` is the path after ``/_armsim/keyvault``."""
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    if not parts and method == "GET":
        vaults = [v for sub in world.subscriptions.values() for v in sub.keyvault.vaults.values()]
        return {"vaults": [v.summary(endpoint) for v in sorted(vaults, key=lambda v: v.name.lower())]}
    if len(parts) == 1 and method == "PUT":
        vault = create_vault(world, parts[0], subscription=body.get("subscription"),
                             resource_group=str(body.get("resourceGroup") or DEFAULT_RESOURCE_GROUP),
                             location=str(body.get("location") or "eastus"))
        return vault.summary(endpoint)
    if len(parts) == 1 and method == "GET":
        return _vault(world, parts[0]).summary(endpoint)
    if len(parts) == 3 and parts[1].lower() == "secrets" and method == "PUT":
        value, enabled, content_type = body.get("value"), body.get("enabled", True), body.get("contentType")
        if not isinstance(value, str) or not isinstance(enabled, bool) or not isinstance(content_type,
                                                                                          (str, type(None))):
            raise BadRequest('Body must be {"value": "<string>", "enabled"?: bool, "contentType"?: "<string>"}.')
        return set_secret(world, parts[0], parts[2], value, enabled=enabled, content_type=content_type,
                          endpoint=endpoint)
    raise NotFound(f"Unknown control endpoint {method} /_armsim/keyvault/{'/'.join(parts)}.")


def _vault(world: World, name: str) -> Vault:
    vault = find_vault(world, name)
    if vault is None:
        raise NotFound(f"No vault '{name}'.")
    return vault
