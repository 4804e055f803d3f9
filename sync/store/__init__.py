"""Our store's own small modules: settings and locks, the feed, API keys, idempotency, inbound webhooks."""
