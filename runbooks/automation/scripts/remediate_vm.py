"""Azure Automation runbook (Python 3.10): plan — and with "apply": true, carry out — the remediation of one VM,
with whichever playbook fits it (or the one named). One parameter, a JSON object, e.g.
    {"subscription_id": "<id>", "vm": "rg/name", "apply": false}
See runbooks.automation.entry.RemediateParameters for every field."""

import sys

from runbooks.automation.entry import remediate_main

sys.exit(remediate_main(sys.argv[1:]))
