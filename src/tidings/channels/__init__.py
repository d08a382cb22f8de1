"""Delivery channels: one subpackage per transport (SMS, WhatsApp, email)."""
