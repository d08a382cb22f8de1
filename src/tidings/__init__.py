"""Tidings: a self-hostable messaging API for WhatsApp, SMS and Email.

The package is laid out by domain (``auth``, ``accounts``, ``messages``, ...); each
domain keeps fixed file roles (router, schemas, service, repository, models).
Nothing runs at import time: :func:`tidings.app.create_app` builds everything.
"""

__version__ = "0.1.0"
