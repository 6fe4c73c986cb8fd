"""Dibao's common code: configuration, the bus (outbox, inbox, event
envelope), databases, identity, errors, money and the policy plugins.

Every service imports from here; nothing here imports a service."""
