"""Shared building blocks: errors, ids, clock, environments, pagination, secrets."""
