"""Key Vault data-plane routes under ``/keyvault/{vault}`` and the RBAC data action each one needs."""

from __future__ import annotations

from armsim.keyvault import responses as r
from armsim.routing import Router

VAULT = "/keyvault/{vault}"
A = "Microsoft.KeyVault/vaults/secrets/"


def register(router: Router) -> None:
    secret = VAULT + "/secrets/{name}"
    # ".../versions" before ".../{version}": the literal segment must win
    router.add("GET", secret + "/versions", r.list_versions, A + "readMetadata/action")
    router.add("GET", secret + "/{version}", r.get_secret, A + "getSecret/action")
    router.add("GET", secret, r.get_secret, A + "getSecret/action")
    router.add("PUT", secret, r.set_secret, A + "setSecret/action")
    router.add("GET", VAULT + "/secrets", r.list_secrets, A + "readMetadata/action")
