"""The services: a run, the push to the shop, the write-back, the shop poll, one scheduler tick."""
