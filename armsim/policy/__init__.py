"""Microsoft.Authorization policy: definitions, assignments, and the deny effect on writes."""
