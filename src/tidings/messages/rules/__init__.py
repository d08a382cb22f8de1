"""The send rules that read the database, one module per channel: opt-outs, the
WhatsApp window, sender checks, email tracking and suppression. They sit next to the
send use case (:mod:`tidings.messages.service`); :mod:`tidings.channels` keeps the
pure channel knowledge they use (encodings, MIME, phone numbers)."""
