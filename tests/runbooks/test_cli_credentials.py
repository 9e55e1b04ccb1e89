"""Without any credential, the CLI says so in one line (azure-identity's per-credential warnings stay out)."""

from __future__ import annotations

import os
import subprocess

from remediation_helpers import INVOKE, REPO


def test_no_credential_is_one_line_and_exit_2(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_"))}
    env.update(AZURE_SUBSCRIPTION_ID="00000000-0000-0000-0000-000000000001", RUNBOOKS_ARM_ENDPOINT="https://127.0.0.1:9",
               HOME=str(tmp_path), PATH="/usr/bin:/bin")  # no az, azd or pwsh to fall back on
    proc = subprocess.run([INVOKE, "diagnose", "--vm", "rg/x"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: reading rg/x failed: cannot authenticate to Azure")
