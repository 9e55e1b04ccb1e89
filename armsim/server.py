"""armsim's HTTPS server and the ``ArmSim`` handle used in-process (context manager, pytest fixture)
and by ``python -m armsim serve``.

TLS is real: a throwaway CA from trustme signs a certificate for 127.0.0.1/localhost, and clients
trust it with ``connection_verify=<ca_bundle>`` — verification is never turned off.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme

from armsim.app import App
from armsim.automation.sandbox import AutomationRuntime
from armsim.http import ArmRequest
from armsim.identity import IdentityServer, StaticTokenCredential
from armsim.state import Config, World


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate TLS records; without TCP_NODELAY the client's delayed ACK
        # stalls every response by ~40 ms (Nagle).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        req = ArmRequest.build(self.command, self.path, dict(self.headers.items()), body, f"https://{host}")
        outcome = self.server.app.handle(req)
        if outcome.delay:
            time.sleep(outcome.delay)
        if outcome.drop or outcome.response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        resp = outcome.response
        data = resp.encoded()
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("x-ms-request-id", secrets.token_hex(16))
        if data:
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-response is not armsim's error


class ArmSim:
    """A running armsim: ``endpoint``, ``ca_bundle``, ``subscription_id``, ``tenant_id``,
    ``identity_endpoint``, ``identity_header``, plus the ``world`` and client helpers.

        with ArmSim(latency_scale=0.01) as arm:
            compute = arm.compute_client()
            arm.seed("generalized-after-capture")
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, state_file: str | Path | None = None,
                 latency_scale: float = 1.0, rbac: bool = False, throttling: bool = True,
                 workdir: str | Path | None = None) -> None:
        self.world = World(Config(latency_scale=latency_scale, rbac=rbac, throttling=throttling))
        self.state_file = Path(state_file) if state_file else None
        if self.state_file and self.state_file.exists():
            self.world.load(self.state_file)
            self.world.config.latency_scale, self.world.config.rbac = latency_scale, rbac
            self.world.config.throttling = throttling
        self.app = App(self.world)
        self._tmp = tempfile.TemporaryDirectory(prefix="armsim-") if workdir is None else None
        self.workdir = Path(workdir) if workdir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        self.ca_bundle = str(self.workdir / "armsim-ca.pem")
        ca.cert_pem.write_to_path(self.ca_bundle)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self.httpd = _Server((host, port), _Handler, bind_and_activate=True)
        self.httpd.app = self.app
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.identity_header = secrets.token_hex(16)
        self.identity = IdentityServer(self.world.default.tenant_id, self.identity_header, host)
        self.automation = AutomationRuntime(self.world, workdir=self.workdir, endpoint=lambda: self.endpoint,
                                            ca_bundle=self.ca_bundle, identity=self.identity).attach()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # --- facts ------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"https://{host!s}:{port}"

    @property
    def subscription_id(self) -> str:
        return self.world.default.id

    @property
    def tenant_id(self) -> str:
        return self.world.default.tenant_id

    @property
    def identity_endpoint(self) -> str:
        return self.identity.endpoint

    def info(self) -> dict[str, str]:
        return {"endpoint": self.endpoint, "ca_bundle": self.ca_bundle, "subscription_id": self.subscription_id,
                "tenant_id": self.tenant_id, "identity_endpoint": self.identity_endpoint,
                "identity_header": self.identity_header}

    def env(self) -> dict[str, str]:
        """Environment variables that point the toolkit and azure-identity at this armsim."""
        return {"RUNBOOKS_ARM_ENDPOINT": self.endpoint, "RUNBOOKS_CA_BUNDLE": self.ca_bundle,
                "AZURE_SUBSCRIPTION_ID": self.subscription_id, "IDENTITY_ENDPOINT": self.identity_endpoint,
                "IDENTITY_HEADER": self.identity_header}

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> ArmSim:
        serve = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="armsim-https",
                                 daemon=True)
        serve.start()
        self.identity.start()
        self.automation.start()
        self._threads.append(serve)
        if self.state_file:
            saver = threading.Thread(target=self._autosave, name="armsim-state", daemon=True)
            saver.start()
            self._threads.append(saver)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.identity.stop()
        self.automation.shutdown()
        if self.state_file:
            self.world.save(self.state_file)
        if self._tmp is not None:
            self._tmp.cleanup()

    def _autosave(self) -> None:
        assert self.state_file is not None
        while not self._stop.wait(0.5):
            if self.world.dirty:
                self.world.save(self.state_file)

    def __enter__(self) -> ArmSim:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # --- helpers ----------------------------------------------------------------------------------
    def seed(self, scenario: str, **params: Any) -> dict[str, Any]:
        from armsim import scenarios

        return scenarios.seed(self.app, scenario, **params)

    def reset(self) -> None:
        self.automation.cancel_all()
        self.world.reset()

    def settle(self) -> None:
        with self.world.lock:
            self.world.settle()

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        with self.world.lock:
            return [dict(r) for r in self.world.requests if r["seq"] > since]

    @property
    def last_request(self) -> int:
        return self.app.seq

    def writes(self, since: int = 0) -> list[dict[str, Any]]:
        """ARM writes (PUT/PATCH/POST/DELETE on resources) logged after request ``since``."""
        return [r for r in self.requests(since) if r["kind"] != "read"]

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        from armsim import faults

        with self.world.lock:
            validated = faults.validate(rule)
            self.world.faults.append(validated)
            return validated

    def host_fault(self, vm_id: str, kind: str) -> dict[str, Any]:
        """Make the VM's host node faulty: ``agent-unreachable`` or ``provisioning-timeout`` (see
        ``POST /_armsim/vms/host-fault``). Returns the host id, whether the fault was armed for the VM's next
        placement, and (provisioning-timeout) the id of the failed PUT that replayed its provisioning."""
        from armsim.control import host_fault

        with self.world.lock:
            self.world.advance()
            return host_fault(self.app, {"vm": vm_id, "kind": kind})

    def vm_facts(self, vm_id: str) -> dict[str, Any]:
        """Hidden VM facts: ``host`` and ``cluster`` (None while deallocated), ``host_fault``, ``armed_fault``,
        ``temp_disk``."""
        from armsim.control import vm_facts

        with self.world.lock:
            self.world.advance()
            return vm_facts(self.app, vm_id)

    def health_event(self, vm_id: str, article_id: str, **fields: Any) -> dict[str, Any]:
        """Record an availability event of a VM (a platform reboot, a guest crash…) with the id of the RCA article
        that explains it; see ``POST /_armsim/health/events`` for ``fields`` (``minutes_ago``,
        ``duration_minutes`` (None: still going on), ``title``, ``summary``, ``context``…)."""
        from armsim.control import health_event

        with self.world.lock:
            self.world.advance()
            return health_event(self.app, {"vm": vm_id, "articleId": article_id, **fields})

    # --- capacity, sizes and quota (armsim.compute.capacity) -------------------------------------------
    def _capacity(self, head: str, body: dict[str, Any]) -> dict[str, Any]:
        from armsim.control import capacity_control

        with self.world.lock:
            self.world.advance()
            return capacity_control(self.app, head, "POST", ["restrictions"] if head == "skus" else [], body)

    def set_capacity(self, location: str, limit: int | None, *, size: str | None = None, zone: str | None = None,
                     cluster: str | None = None) -> dict[str, Any]:
        """At most ``limit`` allocated VMs (of ``size``, or any) per matching cluster; ``None`` lifts the limit."""
        return self._capacity("capacity", {"location": location, "limit": limit, "size": size, "zone": zone,
                                           "cluster": cluster})

    def fail_allocations(self, location: str, times: int = 1, *, size: str | None = None,
                         code: str = "AllocationFailed") -> dict[str, Any]:
        """The next ``times`` allocations (of ``size``, or any) in ``location`` fail with ``code``."""
        return self._capacity("capacity", {"location": location, "fail_next": times, "size": size, "code": code})

    def restrict_sku(self, size: str, location: str, zones: list[str] | None = None,
                     restricted: bool = True) -> dict[str, Any]:
        """Restrict (``NotAvailableForSubscription``) a size in a location, or only in some zones."""
        return self._capacity("skus", {"size": size, "location": location, "zones": zones or [],
                                       "restricted": restricted})

    def set_quota(self, location: str, name: str, limit: int, *, legacy: bool = False) -> dict[str, Any]:
        """The vCPU limit of ``cores`` or of a family (``standardDSv5Family``) in a region."""
        return self._capacity("quota", {"location": location, "name": name, "limit": limit, "legacy": legacy})

    def critical_path(self, since: float = 0.0) -> dict[str, Any]:
        with self.world.lock:
            return self.world.operations.critical_path(since)

    def credential(self, principal: str = "armsim-user") -> StaticTokenCredential:
        return StaticTokenCredential(principal, self.tenant_id)

    def client_kwargs(self) -> dict[str, Any]:
        return {"base_url": self.endpoint, "connection_verify": self.ca_bundle,
                "credential_scopes": ["https://management.azure.com/.default"], "polling_interval": 0}

    def compute_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(credential or self.credential(), self.subscription_id,
                                       **{**self.client_kwargs(), **kwargs})

    def network_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(credential or self.credential(), self.subscription_id,
                                       **{**self.client_kwargs(), **kwargs})

    def resource_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(credential or self.credential(), self.subscription_id,
                                        **{**self.client_kwargs(), **kwargs})

    def lock_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.mgmt.resource.locks import ManagementLockClient

        return ManagementLockClient(credential or self.credential(), self.subscription_id,
                                    **{**self.client_kwargs(), **kwargs})

    def automation_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.mgmt.automation import AutomationClient

        return AutomationClient(credential or self.credential(), self.subscription_id,
                                **{**self.client_kwargs(), **kwargs})

    def wait_job(self, resource_group: str, account: str, job: str, timeout: float = 60.0) -> dict[str, Any]:
        """Block until an Automation job is Completed, Failed or Stopped; its ARM JSON."""
        from armsim.automation.responses import wait_for_job

        job_id = (f"/subscriptions/{self.subscription_id}/resourceGroups/{resource_group}/providers/"
                  f"Microsoft.Automation/automationAccounts/{account}/jobs/{job}")
        return wait_for_job(self.world, job_id, timeout)

    def health_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.mgmt.resourcehealth import ResourceHealthMgmtClient

        return ResourceHealthMgmtClient(credential or self.credential(), self.subscription_id,
                                        **{**self.client_kwargs(), **kwargs})

    def monitor_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.mgmt.monitor import MonitorManagementClient

        return MonitorManagementClient(credential or self.credential(), self.subscription_id,
                                       **{**self.client_kwargs(), **kwargs})

    def marketplace_client(self, credential: Any = None, **kwargs: Any) -> Any:
        from azure.mgmt.marketplaceordering import MarketplaceOrderingAgreements

        return MarketplaceOrderingAgreements(credential or self.credential(), self.subscription_id,
                                             **{**self.client_kwargs(), **kwargs})

    # --- Key Vault (armsim.keyvault) ----------------------------------------------------------------
    def vault_url(self, vault: str) -> str:
        """Where this armsim serves ``vault``: the ``vault_url`` for SecretClient."""
        return f"{self.endpoint}/keyvault/{vault}"

    def create_vault(self, vault: str, **kwargs: Any) -> str:
        """Create a vault (``resource_group``, ``location``, ``subscription`` optional); returns its vault_url."""
        from armsim.keyvault.models import create_vault

        with self.world.lock:
            create_vault(self.world, vault, **kwargs)
        return self.vault_url(vault)

    def set_secret(self, vault: str, name: str, value: str, **kwargs: Any) -> str:
        """Store a new version of a secret (the vault is created if needed); returns the version's URL on
        armsim, usable as a Key Vault secret reference. ``enabled``, ``content_type`` optional."""
        from armsim.keyvault.control import set_secret

        with self.world.lock:
            return str(set_secret(self.world, vault, name, value, endpoint=self.endpoint, **kwargs)["url"])

    def secret_client(self, vault: str, credential: Any = None, **kwargs: Any) -> Any:
        from azure.keyvault.secrets import SecretClient

        return SecretClient(self.vault_url(vault), credential or self.credential(),
                            **{"verify_challenge_resource": False, "connection_verify": self.ca_bundle, **kwargs})


def write_env_file(sim: ArmSim, path: str) -> None:
    """Shell ``export`` lines pointing the toolkit and azure-identity at this armsim (owner-only: the identity
    header is the managed identity's secret)."""
    import shlex

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sim.env().items()))


def serve_forever(sim: ArmSim, scenario: str | None, env_file: str | None = None) -> None:
    """Start, seed, print the one JSON line (and write ``env_file``), serve until SIGTERM/SIGINT."""
    import signal

    sim.start()
    if scenario:
        sim.seed(scenario)
    if env_file:
        try:
            write_env_file(sim, env_file)
        except OSError as e:
            sim.stop()
            raise SystemExit(f"armsim: cannot write {env_file}: {e.strerror or e}") from None
    print(json.dumps(sim.info()), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sim.stop()
