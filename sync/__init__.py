"""Detection and push: pure stage logic, services, and adapters for GesCom and PrestaShop."""
