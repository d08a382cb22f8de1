"""Authentication: passwords, JWT access tokens, login throttling, revocation."""
