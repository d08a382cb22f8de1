"""Email tracking: signed open, click and unsubscribe links, and their routes."""
