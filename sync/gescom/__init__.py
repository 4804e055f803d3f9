"""The GesCom adapter: schema and reflection, chain reading, the one guarded write, the demo base."""
