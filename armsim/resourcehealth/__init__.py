"""Microsoft.ResourceHealth: the availability statuses of virtual machines (current and history)."""
