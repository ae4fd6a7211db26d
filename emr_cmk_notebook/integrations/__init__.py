"""Optional integrations with other notebook tools (installed through extras)."""
