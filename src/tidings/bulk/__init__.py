"""Bulk sending: batches of up to 100,000 messages, their progress, cancel and pacing."""
