"""WhatsApp message templates and template notifications (spec section 5).

``models``       the ``whatsapp_templates`` table
``repository``   its SQL
``shape``        which parameters a template's components take
``schemas``      request and answer bodies
``validation``   WhatsApp's rules for a new template
``languages``    the language codes WhatsApp accepts
``rendering``    filling a template's parameters for one send
``service``      creating templates and building a notification's draft
``review``       the sandbox's simulated review and its durable sweep
``seed_data``    the approved set every sandbox starts with
"""
