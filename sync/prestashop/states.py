"""PrestaShop constants, in one place (see the PrestaShop reference, §6). The webservice client comes later."""
from __future__ import annotations

# Native order states of a fresh 1.7.7+ / 8.x / 9.x install. Shops upgraded from 1.6 or with payment
# modules differ: always prefer the shop's own list when a shop is configured.
# (id, PS_OS_* keys, English, French, template, invoice, send_email, logable, delivery, shipped, paid, pdf_invoice)
_NATIVE = [
    (1, ["PS_OS_CHEQUE"], "Awaiting check payment", "En attente du paiement par chèque", "cheque", 0, 1, 0, 0, 0, 0, 0),
    (2, ["PS_OS_PAYMENT"], "Payment accepted", "Paiement accepté", "payment", 1, 1, 1, 0, 0, 1, 1),
    (3, ["PS_OS_PREPARATION"], "Processing in progress", "En cours de préparation", "preparation", 1, 1, 1, 1, 0, 1, 0),
    (4, ["PS_OS_SHIPPING"], "Shipped", "Expédié", "shipped", 1, 1, 1, 1, 1, 1, 0),
    (5, ["PS_OS_DELIVERED"], "Delivered", "Livré", None, 1, 0, 1, 1, 1, 1, 0),
    (6, ["PS_OS_CANCELED"], "Canceled", "Annulé", "order_canceled", 0, 1, 0, 0, 0, 0, 0),
    (7, ["PS_OS_REFUND"], "Refunded", "Remboursé", "refund", 1, 1, 0, 0, 0, 0, 0),
    (8, ["PS_OS_ERROR"], "Payment error", "Erreur de paiement", "payment_error", 0, 1, 0, 0, 0, 0, 0),
    (9, ["PS_OS_OUTOFSTOCK", "PS_OS_OUTOFSTOCK_PAID"], "On backorder (paid)", "En attente de réapprovisionnement (payé)", "outofstock", 1, 1, 0, 0, 0, 1, 0),
    (10, ["PS_OS_BANKWIRE"], "Awaiting bank wire payment", "En attente de virement bancaire", "bankwire", 0, 1, 0, 0, 0, 0, 0),
    (11, ["PS_OS_WS_PAYMENT"], "Remote payment accepted", "Paiement à distance accepté", "payment", 1, 1, 1, 0, 0, 1, 0),
    (12, ["PS_OS_OUTOFSTOCK_UNPAID"], "On backorder (not paid)", "En attente de réapprovisionnement (non payé)", "outofstock", 0, 1, 0, 0, 0, 0, 0),
    (13, ["PS_OS_COD_VALIDATION"], "Awaiting Cash On Delivery validation", "En attente de paiement à la livraison", "cashondelivery", 0, 0, 0, 0, 0, 0, 0),
]
FLAGS = ("invoice", "send_email", "logable", "delivery", "shipped", "paid", "pdf_invoice")

NATIVE_ORDER_STATES: list[dict] = [
    {
        "id": state_id,
        "config_keys": keys,
        "name": {"en": english, "fr": french},
        "template": template,
        **{flag: bool(value) for flag, value in zip(FLAGS, values)},
    }
    for state_id, keys, english, french, template, *values in _NATIVE
]


def known_state_ids(states: list[dict] | None = None) -> set[int]:
    return {state["id"] for state in (states if states is not None else NATIVE_ORDER_STATES)}
