"""The embeddable WhatsApp chat box (spec section 11).

=================  ===========================================================
``tokens``         chat-box tokens: signed, expiring, one chat, one environment
``origins``        validating ``allowedOrigins`` (CSP ``frame-ancestors``)
``access``         the widget token dependency of the page and its API
``page``           ``GET /widget/whatsapp/chat-box`` and its static files
``views``          the message and window shapes the page is given
``install``        adding all of it to the application
``api``            ``/widget/api/...``: the chat, its history, replies
``templates``      ``/widget/api/templates``: approved templates, and sending one
``live``           ``/widget/api/stream``: Server-Sent Events for the chat
``static/``        the page's HTML, CSS and script (no build step, no CDN)
=================  ===========================================================

The token endpoint itself is ``POST /api/v4/iframes/whatsapp/chat-box``
(:mod:`tidings.api.iframes`).
"""
