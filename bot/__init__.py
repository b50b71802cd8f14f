"""Liaison's wiring: settings, the Bolt app, HTTP serving, the outbox worker and the scheduler."""
