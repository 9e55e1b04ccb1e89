"""armsim.serve: run the emulator in the foreground."""

from __future__ import annotations

from invoke import Collection, Context

from tasks._common import task


@task(help={"port": "port to listen on (0 = any free port)", "scenario": "scenario to seed at start (a playbook id "
            "seeds a VM that playbook fixes, with distractors)",
            "latency_scale": "how fast armsim's clock runs (1.0 = Azure's real durations)"})
def armsim_serve(c: Context, port: int = 0, scenario: str = "", latency_scale: float = 1.0) -> None:
    """Run armsim, the local HTTPS emulator of Azure Resource Manager, until Ctrl-C."""
    args = ["python", "-m", "armsim", "serve", "--port", str(port), "--latency-scale", str(latency_scale)]
    if scenario:
        args += ["--scenario", scenario]
    c.run(" ".join(args), pty=False)


armsim = Collection("armsim", serve=armsim_serve)
