"""The WhatsApp channel: chat ids, the customer service window, send rules."""
