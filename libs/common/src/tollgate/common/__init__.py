"""Tollgate shared plumbing. Never business rules: those live in the services."""
