"""Azure Automation runbook (Python 3.10): find the VMs of a subscription in a state a playbook covers; report
them, or remediate them when told to. One parameter, a JSON object, e.g.
    {"subscription_id": "<id>", "resource_group": null, "remediate": false, "max_vms": 10}
See runbooks.automation.entry.SweepParameters for every field."""

import sys

from runbooks.automation.entry import sweep_main

sys.exit(sweep_main(sys.argv[1:]))
