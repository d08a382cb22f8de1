"""The inbound edge: what networks post to Tidings (:mod:`.router`)."""
