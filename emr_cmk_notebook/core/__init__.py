"""Core model: encryption configuration, ARNs, policy engine and errors (standard library only)."""
