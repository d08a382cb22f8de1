"""Fakes of the networks providers talk to, each named after what it acts."""
