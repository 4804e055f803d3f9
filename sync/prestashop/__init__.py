"""The PrestaShop adapter: the webservice client and the shop's order states."""
