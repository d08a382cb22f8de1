"""Credits: the per-account balance and its ledger (production only)."""
