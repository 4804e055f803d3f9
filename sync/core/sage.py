"""Sage 100 GesCom constants, in one place (see the Sage reference, §3-§5)."""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum

SALES_DOMAIN = 0


class DocumentType(IntEnum):
    """Sales `DO_Type` values."""

    DEVIS = 0
    BON_DE_COMMANDE = 1
    PREPARATION_DE_LIVRAISON = 2
    BON_DE_LIVRAISON = 3
    BON_DE_RETOUR = 4
    BON_AVOIR_FINANCIER = 5
    FACTURE = 6
    FACTURE_COMPTABILISEE = 7


ABBREVIATIONS = {0: "DE", 1: "BC", 2: "PL", 3: "BL", 4: "BR", 5: "BA", 6: "FA", 7: "FAC"}
INVOICE_TYPES = frozenset({DocumentType.FACTURE, DocumentType.FACTURE_COMPTABILISEE})
RETURN_TYPES = frozenset({DocumentType.BON_DE_RETOUR, DocumentType.BON_AVOIR_FINANCIER})
# Documents a shop order can be followed through (devis and archives are not).
FOLLOWED_TYPES = tuple(range(DocumentType.BON_DE_COMMANDE, DocumentType.FACTURE_COMPTABILISEE + 1))
# Shipping documents a company may use ("which document means shipped" is a setting).
SHIPPING_TYPE_CHOICES = (DocumentType.PREPARATION_DE_LIVRAISON, DocumentType.BON_DE_LIVRAISON)
# DO_Provenance of an invoice: 1 facture de retour, 2 facture d'avoir, 4 facture d'acompte (a down payment:
# it may carry the order's link value, but it ships nothing).
RETURN_PROVENANCES = frozenset({1, 2})
DOWN_PAYMENT_PROVENANCE = 4

# Empty dates are stored as 1753-01-01 or 1900-01-01, never NULL: anything before 1901 is "no date".
EMPTY_DATE_BEFORE = date(1901, 1, 1)

# Header and line fields a user may pick for the tracking number, with the labels Sage shows.
STANDARD_TRACKING_HEADER_FIELDS = {
    "DO_Coord01": "Entête 1",
    "DO_Coord02": "Entête 2",
    "DO_Coord03": "Entête 3",
    "DO_Coord04": "Entête 4",
}
STANDARD_TRACKING_LINE_FIELDS = {"DL_NoColis": "N° colis"}
# Header fields commonly used to hold the shop order.
STANDARD_LINK_FIELDS = {"DO_NoWeb": "N° commande web", "DO_Ref": "Référence", "DO_RefExterne": "Référence externe"}


def is_technical_column(name: str) -> bool:
    """Sage's technical layer (cbMarq, cbModification, cbDO_Piece, cbHash...): never configurable, never written."""
    return name.lower().startswith("cb")


def as_date(value: object) -> date | None:
    """A Sage date as a `date`, or None for NULL and the 1753/1900 sentinels."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        raise ValueError(f"not a date: {value!r}")
    return None if value < EMPTY_DATE_BEFORE else value
