"""Market data: the symbol universe, a provider interface, and a deterministic simulated feed."""
