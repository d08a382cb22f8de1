"""The simulated providers of the sandbox: scenarios, network, recovery, seed data."""
