"""Messages of every channel: models, the status machine, sending, delivery, inbound."""
