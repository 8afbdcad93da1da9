"""Cost alerts: recorded once per (budget, period, threshold), delivered by Kafka, e-mail and signed
webhooks through a delivery table with retries and backoff."""
