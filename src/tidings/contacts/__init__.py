"""Contacts: opt-outs per channel (STOP / START)."""
