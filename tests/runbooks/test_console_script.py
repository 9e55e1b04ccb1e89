"""The installed command: ``rca-runbooks`` works from any folder (not only the repository root, as ``invoke``
does), and output cut short by a pipe (``| head``) ends quietly instead of with a BrokenPipe traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("rca-runbooks")


@pytest.fixture
def script() -> Path:
    if not SCRIPT.exists():
        pytest.skip("rca-runbooks is not installed in this environment (pip install -e '.[test]')")
    return SCRIPT


def test_the_command_works_from_any_folder(script: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(script), "playbooks.list", "--json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "generalized-vm" in done.stdout and "redeploy-vm" in done.stdout
    helped = subprocess.run([str(script), "--help", "remediate"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and "--dry-run" in helped.stdout


def test_a_closed_pipe_ends_quietly(script: Path, tmp_path: Path) -> None:
    """The reader is gone before the command writes a byte (``| head`` that already has its lines)."""
    proc = subprocess.Popen([str(script), "--list"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the interpreter has started and printed anything
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_the_readme_recipe_connects_the_command_to_a_served_armsim(script: Path, tmp_path: Path) -> None:
    """``python -m armsim serve --env-file FILE`` then ``. FILE``: the installed command reaches armsim with the
    managed identity azure-identity finds there, from any folder, as the README says."""
    env_file = tmp_path / "armsim.env"
    env_file.write_text("stale\n")
    env_file.chmod(0o644)  # a file left from an earlier run: rewritten owner-only
    server = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--port", "0", "--latency-scale", "0.001",
                               "--scenario", "redeploy-vm", "--env-file", str(env_file)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline(), "armsim did not start"
        assert env_file.stat().st_mode & 0o077 == 0  # the identity header is a secret: owner-only
        exported = env_file.read_text()
        assert {"RUNBOOKS_ARM_ENDPOINT", "RUNBOOKS_CA_BUNDLE", "AZURE_SUBSCRIPTION_ID", "IDENTITY_ENDPOINT",
                "IDENTITY_HEADER"} <= {line.split()[1].split("=")[0] for line in exported.splitlines()}
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_", "MSI_"))}
        done = subprocess.run(["sh", "-c", f'. "{env_file}" && "{script}" diagnose --vm rg-redeploy/web-01'],
                              cwd=tmp_path, env={**clean, "RUNBOOKS_HOME": str(tmp_path / "home")},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "redeploy-vm" in done.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
