"""Azurite (Microsoft's Azure Storage emulator, an npm package) for the blob-store tests: found under the repo's
``.azurite/`` (``.ci/run`` installs it there), in ``node_modules/.bin`` or on PATH, else installed there with npm
once; started over HTTPS (a trustme certificate) with ``--oauth basic`` so both shared-key (connection string)
and bearer-token requests are checked; stopped at session end. Without Node.js the tests skip, saying so."""

from __future__ import annotations

import base64
import json
import queue
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import trustme

from runbooks.store_blob import BlobStore

REPO = Path(__file__).resolve().parents[2]
# 3.35.0: the newest Azurite that runs on Node 20 (3.36+ need Node >= 21). Keep in step with .ci/run.
AZURITE_VERSION = "3.35.0"
ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key (not a secret of ours; still never printed by the toolkit).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
LEASE = 15  # Azure's shortest lease: a dead runner's lock expires in at most this many seconds


def find_azurite() -> str | None:
    for candidate in (REPO / ".azurite" / "node_modules" / ".bin" / "azurite-blob",
                      REPO / "node_modules" / ".bin" / "azurite-blob"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("azurite-blob")


def azurite_binary() -> str:
    """The azurite-blob launcher, installing it under ``<repo>/.azurite`` with npm if needed; skip without Node."""
    if shutil.which("node") is None:
        pytest.skip("blob-store tests need Node.js to run Azurite (the Azure Storage emulator): install nodejs and "
                    f"npm, then: npm install --prefix .azurite azurite@{AZURITE_VERSION}")
    found = find_azurite()
    if found:
        return found
    if shutil.which("npm") is None:
        pytest.skip("blob-store tests need Azurite and npm is missing to install it: install npm, then: "
                    f"npm install --prefix .azurite azurite@{AZURITE_VERSION}")
    done = subprocess.run(["npm", "install", "--prefix", str(REPO / ".azurite"), "--no-audit", "--no-fund",
                           "--loglevel=error", f"azurite@{AZURITE_VERSION}"],
                          capture_output=True, text=True, timeout=600)
    found = find_azurite()
    if done.returncode != 0 or not found:
        pytest.skip(f"could not install Azurite with npm: {(done.stderr or done.stdout).strip()[-300:]}")
    return found


class Azurite:
    """One Azurite blob service for the test session, over HTTPS, with OAuth (basic) and shared key."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.workdir = workdir
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_bundle = str(workdir / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_bundle)
        cert.private_key_pem.write_to_path(str(workdir / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(workdir / "cert.pem"))
        (workdir / "data").mkdir()
        self.proc = subprocess.Popen(
            [binary, "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", str(workdir / "data"),
             "--cert", str(workdir / "cert.pem"), "--key", str(workdir / "key.pem"), "--oauth", "basic",
             "--skipApiVersionCheck", "--disableTelemetry"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        self.log: list[str] = []
        lines: queue.Queue[str] = queue.Queue()

        def drain() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.append(line)
                lines.put(line)

        threading.Thread(target=drain, name="azurite-log", daemon=True).start()
        deadline = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError("Azurite did not start in 60 s:\n" + "".join(self.log)) from None
            m = re.search(r"listens on https://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        self.account_url = f"https://127.0.0.1:{self.port}/{ACCOUNT}"
        self.connection_string = (f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                                  f"BlobEndpoint={self.account_url};")

    def env(self, container: str, lease: int = LEASE) -> dict[str, str]:
        """What a CLI subprocess needs to use ``container`` as its run store."""
        return {"RUNBOOKS_STORE_CONNECTION_STRING": self.connection_string, "RUNBOOKS_STORE_CONTAINER": container,
                "RUNBOOKS_STORE_CA_BUNDLE": self.ca_bundle, "RUNBOOKS_STORE_LEASE_SECONDS": str(lease)}

    def store(self, container: str, lease: int = LEASE) -> BlobStore:
        return BlobStore.connect(None, container, connection_string=self.connection_string, ca_bundle=self.ca_bundle,
                                 lease=lease)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def new_container() -> str:
    return f"runs-{uuid.uuid4().hex[:16]}"


# --- bearer tokens Azurite accepts ---------------------------------------------------------------------------


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _b64(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class AudienceToken:
    """A TokenCredential handing out armsim tokens for one fixed audience, whatever scope is asked for."""

    def __init__(self, audience: str) -> None:
        self.audience = audience

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        from armsim.identity import make_token

        return AccessToken(*make_token("armsim-user", "armsim-tenant", resource=self.audience))
