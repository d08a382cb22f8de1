"""Sending domains (spec section 7): what an account proves it may send as.

- :mod:`.models` the ``email_domains`` table (keys sealed, the last DNS check);
- :mod:`.keys` DKIM key pairs (RSA-2048 and Ed25519) and their public records;
- :mod:`.records` the records to publish, and how what DNS holds is judged;
- :mod:`.resolver` DNS lookups through the configured resolvers;
- :mod:`.service` create, list, read, delete, verify, and the periodic re-check;
- :mod:`.signing` DKIM signatures on outgoing mail (dkimpy);
- :mod:`.verp` the signed return paths on the bounce domain;
- :mod:`.outbound` what the ``smtp`` kind asks per message (signed MIME, envelope);
- :mod:`.resealing` the resealer of the sealed keys.
"""
