"""Configurations (ps_configuration), read-only over the webservice (§3.6). What a real 8.1.2 shop does: a row
per key, id_shop_group and id_shop NULL (they come out as ""), and the install-time rows carry zero dates
(recorded: configuration_ps_os_shipping_json). The simulator gives a key its id the first time it is read
(recorded.py sets PS_OS_SHIPPING's recorded id).
"""

from __future__ import annotations

from .registry import Hooks


class Configurations:
    def _config_rows(self) -> list[dict]:
        rows = []
        for name, value in self.configuration.items():
            if name not in self.config_ids:
                self.config_ids[name] = max(self.config_ids.values(), default=0) + 1
            # Recorded (configuration_ps_os_shipping_json): install-time rows carry zero dates and no shop.
            rows.append(
                {
                    "id": self.config_ids[name],
                    "value": value,
                    "name": name,
                    "id_shop_group": None,
                    "id_shop": None,
                    "date_add": "0000-00-00 00:00:00",
                    "date_upd": "0000-00-00 00:00:00",
                }
            )
        return rows


HOOKS = {"configurations": Hooks(rows=Configurations._config_rows)}
