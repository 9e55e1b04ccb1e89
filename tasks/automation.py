"""Tasks for Azure Automation: build the wheel set, deploy the runbooks, export a template, run a job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Collection, Context, Exit

from tasks._common import CONNECTION_HELP, azure, task, user_errors

if TYPE_CHECKING:
    from runbooks.automation.deploy import Settings

_WHEELS_HELP = "the folder `automation.package` built (default: dist/automation)"


def _deploy_settings(location: str, wheels_url: str, runtime_environment: str, identity: str, schedule: str,
                     sweep_parameter: str) -> Settings:
    import json
    import os

    from runbooks.automation.deploy import ScheduleSpec, Settings
    from runbooks.automation.entry import SweepParameters, parse_parameter
    from runbooks.errors import UsageError

    if not location:
        raise UsageError("--location is required (the Automation account's region, e.g. eastus)")
    if not wheels_url.startswith(("https://", "http://")):
        raise UsageError("--wheels-url must be the http(s) URL the wheel folder is served from (e.g. a blob "
                         "container); the service downloads every package from there")
    sweep = parse_parameter([sweep_parameter], SweepParameters) if sweep_parameter else None
    return Settings(location=location, wheels_url=wheels_url, runtime_environment=runtime_environment,
                    identity=identity, schedule=ScheduleSpec.parse(schedule) if schedule else None,
                    sweep_parameters=json.loads(sweep.model_dump_json(exclude_defaults=True)) if sweep else {},
                    wheels_sas=os.environ.get("RUNBOOKS_WHEELS_SAS") or None)


@task(help={"out": "folder to write the wheels, runbook scripts and manifest.json into (default: dist/automation)",
            "python_version": "the sandbox's Python (default 3.10, the current Automation runtime)"})
def automation_package(c: Context, out: str = "dist/automation", python_version: str = "3.10") -> None:
    """Build the complete wheel set for the Automation sandbox (Linux x86_64, CPython 3.10) and report its size."""
    with user_errors():
        from pathlib import Path

        from runbooks.automation.package import build

        ws = build(Path(out), python_version=python_version, progress=lambda line: print(line, flush=True))
        for w in ws.wheels:
            print(f"  {w.file}  {w.size / 1024:,.0f} KiB")
        print(f"{len(ws.wheels)} wheels, {len(ws.scripts)} runbook scripts, {ws.size / 2**20:.1f} MiB "
              f"(limit 100 MiB) → {out}/manifest.json")


_DEPLOY_HELP = {
    "resource_group": "resource group of the Automation account", "account": "Automation account name",
    "location": "the account's region (required)",
    "wheels_url": "http(s) URL where the --wheels folder is served (SAS token, if any: env RUNBOOKS_WHEELS_SAS)",
    "wheels": _WHEELS_HELP, "runtime_environment": "runtime environment name (default rca-runbooks-py310)",
    "identity": "SystemAssigned (default) or a user-assigned identity's resource id",
    "schedule": "schedule the sweep: FREQUENCY[/INTERVAL][@HH:MM] UTC, e.g. day@02:00, hour/6",
    "sweep_parameter": "the scheduled sweep's JSON parameter, e.g. '{\"remediate\": false, \"max_vms\": 10}'",
}


@task(help={**_DEPLOY_HELP, **CONNECTION_HELP})
def automation_deploy(c: Context, resource_group: str, account: str, wheels_url: str, location: str = "",
                      wheels: str = "dist/automation", runtime_environment: str = "rca-runbooks-py310",
                      identity: str = "SystemAssigned", schedule: str = "", sweep_parameter: str = "",
                      endpoint: str = "", ca_bundle: str = "", subscription: str = "") -> None:
    """Deploy (idempotently) the runbooks to an Automation account: identity, runtime, packages, publish, schedule."""
    with user_errors():
        from pathlib import Path

        from runbooks.automation.deploy import deploy
        from runbooks.automation.package import WheelSet

        settings = _deploy_settings(location, wheels_url, runtime_environment, identity, schedule, sweep_parameter)
        wheel_set = WheelSet.load(Path(wheels))
        az = azure(endpoint, ca_bundle, subscription)
        report = deploy(az.automation(), resource_group, account, wheel_set, settings,
                        progress=lambda line: print(line, flush=True))
        print(f"Deployed to {resource_group}/{account}: {report.writes} change(s).")
        if report.principal_id:
            print(f"The account's identity is principal {report.principal_id}: assign it the role in "
                  "runbooks/automation/roles/ (remediator.json, or reader.json for report-only sweeps).")


@task(help={**_DEPLOY_HELP, "out": "write the template here (default: stdout)",
            "account": "default Automation account name in the template"})
def automation_template(c: Context, account: str, wheels_url: str, location: str = "", out: str = "",
                        wheels: str = "dist/automation", runtime_environment: str = "rca-runbooks-py310",
                        identity: str = "SystemAssigned", schedule: str = "", sweep_parameter: str = "",
                        resource_group: str = "") -> None:
    """Export the same deployment as an ARM template (JSON) for IaC pipelines."""
    with user_errors():
        import json
        from pathlib import Path

        from runbooks.automation.package import WheelSet
        from runbooks.automation.template import arm_template

        settings = _deploy_settings(location or "[resourceGroup().location]", wheels_url, runtime_environment,
                                    identity, schedule, sweep_parameter)
        text = json.dumps(arm_template(WheelSet.load(Path(wheels)), settings, account), indent=2) + "\n"
        if out:
            Path(out).write_text(text)
            print(f"wrote {out}")
        else:
            print(text, end="")


@task(help={"resource_group": "resource group of the Automation account", "account": "Automation account name",
            "runbook": "Sweep-VMs or Remediate-VM",
            "parameter": "the runbook's JSON parameter, e.g. '{\"vm\": \"rg/name\"}'",
            "timeout": "seconds to wait for the job to end (default 3600)", **CONNECTION_HELP})
def automation_start(c: Context, resource_group: str, account: str, runbook: str, parameter: str = "{}",
                     timeout: float = 3600.0, endpoint: str = "", ca_bundle: str = "", subscription: str = "") -> None:
    """Start a job of a published runbook, follow it to the end and print its streams; exit 1 if it failed."""
    with user_errors():
        from runbooks.automation.jobs import follow_job

        az = azure(endpoint, ca_bundle, subscription)
        result = follow_job(az.automation(), resource_group, account, runbook, parameter, timeout=timeout,
                         progress=lambda line: print(line, flush=True))
        if result.status != "Completed":
            raise Exit(f"error: job {result.job_id} ended {result.status}", code=1)




automation = Collection("automation", package=automation_package, deploy=automation_deploy,
                        template=automation_template, start=automation_start)
