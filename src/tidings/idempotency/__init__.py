"""Idempotency keys of creating POSTs."""
