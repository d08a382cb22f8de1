"""The console's pages: one module per page or group of pages, each with a ``router``
declared under ``/console`` (see :mod:`tidings.console.install` for the list)."""
