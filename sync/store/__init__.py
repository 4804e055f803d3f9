"""Our store's own small modules: a shop order's memory (its one mapping), settings and locks, the feed, API keys, idempotency, inbound webhooks."""
