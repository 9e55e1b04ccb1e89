"""Key Vault vaults and their secrets (the data plane's state).

A vault belongs to a subscription and resource group (its ARM id is the RBAC scope of its data actions),
but its name is global, as in Azure where it is a DNS name: lookups go by name across subscriptions.
A secret keeps every version, oldest first; the last one is the current value.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armsim.errors import BadRequest, Conflict
from armsim.keyvault.exceptions import SecretNotFound, invalid_name
from armsim.state import Collections

if TYPE_CHECKING:
    from armsim.state import Subscription, World

DEFAULT_RESOURCE_GROUP = "armsim-vaults"
# Azure's rules: 3-24 characters, letters, digits and single hyphens, starting with a letter.
_VAULT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


def check_secret_name(name: str) -> None:
    if not _SECRET_NAME.match(name):
        raise invalid_name(name)


@dataclass
class SecretVersion:
    version: str
    value: str
    created: int
    updated: int
    enabled: bool = True
    content_type: str | None = None
    not_before: int | None = None
    expires: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Secret:
    name: str
    versions: list[SecretVersion] = field(default_factory=list)

    @property
    def current(self) -> SecretVersion:
        return self.versions[-1]


@dataclass
class Vault:
    id: str
    name: str
    location: str
    tenant_id: str
    secrets: dict[str, Secret] = field(default_factory=dict)  # lower name → secret

    @property
    def uri(self) -> str:
        """The vault's URI as Azure names it; secret ids in responses use it (see armsim/keyvault/__init__.py)."""
        return f"https://{self.name.lower()}.vault.azure.net"

    def scope(self, secret: str | None = None) -> str:
        """The RBAC scope of a data action on the vault or on one of its secrets."""
        return f"{self.id}/secrets/{secret}" if secret else self.id

    def set_secret(self, name: str, value: str, now: float, *, enabled: bool = True,
                   content_type: str | None = None, not_before: int | None = None, expires: int | None = None,
                   tags: dict[str, str] | None = None) -> tuple[Secret, SecretVersion]:
        """Add a new version (creating the secret on its first version)."""
        check_secret_name(name)
        secret = self.secrets.setdefault(name.lower(), Secret(name))
        stamp = int(now)
        version = SecretVersion(uuid.uuid4().hex, value, stamp, stamp, enabled, content_type, not_before, expires,
                                dict(tags or {}))
        secret.versions.append(version)
        return secret, version

    def get(self, name: str, version: str | None = None) -> tuple[Secret, SecretVersion]:
        check_secret_name(name)
        secret = self.secrets.get(name.lower())
        if secret is None or not secret.versions:
            raise SecretNotFound(name, version)
        if not version:
            return secret, secret.current
        for v in secret.versions:
            if v.version.lower() == version.lower():
                return secret, v
        raise SecretNotFound(name, version)

    def summary(self, endpoint: str) -> dict[str, Any]:
        """What the control API shows of a vault: never a secret's value."""
        return {"name": self.name, "id": self.id, "location": self.location, "tenantId": self.tenant_id,
                "vaultUri": self.uri, "armsimVaultUrl": f"{endpoint}/keyvault/{self.name}",
                "secrets": {s.name: [v.version for v in s.versions] for s in self.secrets.values()}}


class KeyVaultState(Collections):
    MODELS = {"vaults": Vault}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.vaults: dict[str, Vault] = {}  # lower vault name → vault

    def load_state(self, data: dict[str, Any]) -> None:
        for key, v in data.get("vaults", {}).items():
            secrets = {k: Secret(s["name"], [SecretVersion(**ver) for ver in s.get("versions", [])])
                       for k, s in v.get("secrets", {}).items()}
            self.vaults[key] = Vault(**{**v, "secrets": secrets})

    def to_state(self) -> dict[str, Any]:
        return {"vaults": {k: dataclasses.asdict(v) for k, v in self.vaults.items()}}


def find_vault(world: World, name: str) -> Vault | None:
    for sub in world.subscriptions.values():
        vault = sub.keyvault.vaults.get(name.lower())
        if vault is not None:
            return vault
    return None


def create_vault(world: World, name: str, *, subscription: str | None = None,
                 resource_group: str = DEFAULT_RESOURCE_GROUP, location: str = "eastus") -> Vault:
    """A new vault (the resource group is created if missing); an existing vault of that name is returned
    unchanged if it is in the same subscription, refused otherwise (vault names are global)."""
    if not _VAULT_NAME.match(name) or "--" in name:
        raise BadRequest(f"Vault name '{name}' is invalid: 3-24 letters, digits and single hyphens, starting with a "
                         "letter and ending with a letter or digit.")
    sub = world.sub(subscription) if subscription else world.default
    existing = find_vault(world, name)
    if existing is not None:
        if existing.id.lower().startswith(f"/subscriptions/{sub.id.lower()}/"):
            return existing
        raise Conflict(f"The vault name '{name}' is already in use.", code="VaultAlreadyExists")
    rg = sub.ensure_rg(resource_group, location)
    vault = Vault(f"{sub.rg_id(rg.name)}/providers/Microsoft.KeyVault/vaults/{name}", name, location, sub.tenant_id)
    sub.keyvault.vaults[name.lower()] = vault
    world.dirty = True
    return vault
