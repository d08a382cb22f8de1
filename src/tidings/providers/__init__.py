"""Providers: the configured connections to real networks, and the seam they plug into.

- :mod:`.errors` the delivery error tree (drawn in its docstring);
- :mod:`.base` what a provider is given (``OutboundMessage``) and gives back
  (``Accepted`` with its references, ``StatusReport``, ``InboundMessage``), and the
  ``Provider`` protocol every kind implements;
- :mod:`.registry` every kind in one place (``KindSpec``: channel, config model,
  secret fields, static capabilities, how to build one);
- :mod:`.models` / :mod:`.repository` the ``providers`` table, the ``provider_refs``
  that correlate reports, and the inbox of raw reports;
- :mod:`.service` the use cases behind ``/api/v4/providers`` and ``tidings providers``;
- :mod:`.directory` which provider takes a message (priority, circuit breakers) and
  the one live instance of each provider in a process;
- :mod:`.inbox` stores what providers report, durably, then applies it;
- one folder per kind: :mod:`.simulator` (more kinds join as folders).
"""
