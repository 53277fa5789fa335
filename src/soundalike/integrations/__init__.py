"""Optional pieces at the edge (Ray engine, players, plugins), each calling the same API as the CLI."""
