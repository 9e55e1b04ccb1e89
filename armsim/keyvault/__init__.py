"""A minimal Azure Key Vault data plane for secrets, on armsim's own HTTPS endpoint.

A vault named ``v`` is served at ``{armsim endpoint}/keyvault/v``: that is the ``vault_url`` to give
``azure.keyvault.secrets.SecretClient`` (the SDK keeps a path in ``vault_url``), with
``verify_challenge_resource=False`` (the challenge names ``https://vault.azure.net``, not armsim's host) and
``connection_verify=<armsim CA bundle>``. A secret reference on armsim is therefore
``{endpoint}/keyvault/v/secrets/{name}[/{version}]``.

Secret ids in responses keep Azure's form ``https://v.vault.azure.net/secrets/{name}/{version}``: the SDK
parses every id as ``host/secrets/name[/version]`` and rejects one with a path prefix, so an id cannot
point back at armsim. Use ``vault_url`` (above), not ``secret.properties.vault_url``, to reach armsim.

Vaults and secrets are created through the control API (``/_armsim/keyvault/…``) or ``ArmSim.set_secret``;
state lives with the vault's subscription. See ``pipeline`` for the request flow (challenge, audience,
RBAC data actions) and docs/armsim.md, "Key Vault".
"""
