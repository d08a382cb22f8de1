"""Webhooks: endpoints, Standard Webhooks signing, fan-out from the transactional
outbox, durable delivery with retries, the attempt log, and the SSRF guard."""
