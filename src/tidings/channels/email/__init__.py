"""Email channel: address parsing, MIME message building and the SMTP transport."""
