"""Microsoft.Storage: storage accounts (enough for boot diagnostics: name, SKU, kind, location, blob endpoint)."""
