"""Persistence for Liaison: SQLModel tables, queries, the outbox and schema migrations."""
