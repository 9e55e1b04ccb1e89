"""armsim: a stateful HTTPS emulator of the slice of Azure Resource Manager that azure-rca-runbooks
uses — the real Azure SDK talks to it over real TLS. See the README section "armsim in your tests".
"""

from armsim.identity import StaticTokenCredential
from armsim.server import ArmSim

__all__ = ["ArmSim", "StaticTokenCredential"]
