"""Routing: a request's chain of models (the model, then its fallbacks), retries with backoff inside
one deadline, and cooldowns for failing models (docs/providers.md "Routing")."""
