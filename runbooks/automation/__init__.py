"""Azure Automation: the runbook entry points, the wheel set for the Python 3.10 sandbox, deployment with
azure-mgmt-automation, an equivalent ARM template, and least-privilege role definitions.

    entry.py      what a job runs: one JSON parameter (pydantic), stream prefixes, managed identity
    scripts/      the runbook files uploaded as draft content (thin: they call entry.py)
    package.py    the complete wheel set for Linux x86_64 / CPython 3.10 (the service resolves nothing)
    deploy.py     account → runtime environment → packages → runbooks → publish → schedule → job schedule
    template.py   the same deployment as an ARM template, for teams that deploy with IaC
    roles/        custom role definitions: remediation, and read-only sweeps
"""
