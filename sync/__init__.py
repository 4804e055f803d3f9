"""Detection and delivery: pure stage logic, services, and adapters for GesCom and PrestaShop."""
