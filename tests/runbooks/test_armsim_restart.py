"""ARM going away mid-run: armsim (``serve --state``) is stopped while ``invoke remediate --yes`` is working and
started again with a new port and CA. The run ends with one error line (no traceback), a non-zero exit, and
the journal kept; the same command against the restarted armsim resumes the run and converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from azure.mgmt.compute import ComputeManagementClient
from remediation_helpers import INVOKE, PASSWORD, REPO

from armsim import StaticTokenCredential


@contextmanager
def serve(*args: str) -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--port", "0", "--latency-scale", "0.05",
                             "--no-throttling", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def _env(info: dict[str, Any], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_"))}
    env.update(RUNBOOKS_ARM_ENDPOINT=info["endpoint"], RUNBOOKS_CA_BUNDLE=info["ca_bundle"],
               AZURE_SUBSCRIPTION_ID=info["subscription_id"], IDENTITY_ENDPOINT=info["identity_endpoint"],
               IDENTITY_HEADER=info["identity_header"], RUNBOOKS_HOME=str(home), RUNBOOKS_ADMIN_PASSWORD=PASSWORD)
    return env


def _remediate(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([INVOKE, "remediate", "--vm", "rg-demo/api-01", "--scenario", "from-os-disk", "--yes"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_armsim_restart_mid_run_is_one_error_line_and_the_same_command_resumes(tmp_path: Path) -> None:
    state, home = tmp_path / "world.json", tmp_path / "home"
    with serve("--scenario", "generalized-without-sysprep", "--state", str(state)) as info:
        run = _remediate(_env(info, home))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # stop ARM once the run has started writing
            journals = list(home.glob("runs/*/journal.jsonl"))
            if journals and '"call-intent"' in journals[0].read_text():
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the run never started writing")
    out, err = run.communicate(timeout=300)
    assert run.returncode != 0, out
    assert "Traceback" not in out + err, err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    with serve("--state", str(state)) as info:
        again = _remediate(_env(info, home))
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, out + err
        assert "resuming it" in out
        compute = ComputeManagementClient(StaticTokenCredential(), info["subscription_id"], base_url=info["endpoint"],
                                          connection_verify=info["ca_bundle"], retry_total=0,
                                          credential_scopes=["https://management.azure.com/.default"])
        codes = [s.code for s in compute.virtual_machines.instance_view("rg-demo", "api-01").statuses]
        assert "PowerState/running" in codes and "OSState/generalized" not in codes
