"""A realistic demo GesCom: a few hundred web orders of two shops at every stage, tracking numbers where companies
type them.

Tracking numbers are typed in "Entête 1" (DO_Coord01) of most delivery notes, in "N° colis" (DL_NoColis) of
the lines for some, and in the header free field "Ref Chronopost" for Chronopost parcels, as in real bases.
Two PrestaShop shops feed the company, told apart by the numbering series (DO_Souche): most orders come from the
main shop (souche 0, customer account CWEB), about 30 % from a B2B shop (souche 1, one account per professional
customer). Each shop numbers its own orders, so an id_order such as 1001 is in both: only the souche tells the two
apart, as in a real base.
"""

from __future__ import annotations

import random
import string
from datetime import datetime, timedelta

from sqlalchemy import MetaData, Table, select
from sqlalchemy.engine import Engine

from sync.core.sage import DocumentType
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.shops import DEFAULT_SOUCHE, PRO_SOUCHE, order_key
from sync.gescom.demo.warehouse import Warehouse, souche_number

CATALOGUE = [
    ("TSHIRT-M", "T-shirt coton bio taille M"),
    ("TSHIRT-L", "T-shirt coton bio taille L"),
    ("MUG", "Mug céramique 33 cl"),
    ("SWEAT-S", "Sweat à capuche taille S"),
    ("CASQ-BT", "Casque Bluetooth"),
    ("CAHIER-A5", "Cahier A5 ligné"),
    ("STYLO-BLEU", "Stylo bille bleu (lot de 10)"),
    ("GOURDE-75", "Gourde inox 75 cl"),
    ("SAC-TOTE", "Sac cabas toile"),
    ("AFFICHE-A3", "Affiche illustrée A3"),
    ("BOUGIE-FIGUE", "Bougie parfumée figue"),
    ("THE-VERT", "Thé vert bio 100 g"),
]
FIRST_KEY = 1001  # each shop's first id_order
PRO_SHARE = 0.3  # of the orders, those of the B2B shop
WEB_CUSTOMER = "CWEB"  # the main shop's orders are all on one customer account, as connectors often do
PRO_CUSTOMERS = ("BUREAUPLUS", "LIBRAIRIE-DUVAL", "CAFE-DES-ARTS", "ECOLE-ST-JEAN", "ATELIER-MOREL")


class Clock:
    """A settable clock so generated history is spread over the past days."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def tracking_number(rng: random.Random, carrier: int) -> str:
    digits = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    if carrier == 3:
        return f"XY{digits(9)}FR"  # Chronopost
    if carrier == 4:
        return digits(14)  # DPD
    if carrier == 5:
        return "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))  # UPS
    return f"6A{digits(11)}"  # Colissimo


def _order_lines(rng: random.Random) -> list[tuple[str, str, int]]:
    return [(sku, name, rng.choice((1, 1, 1, 2, 3))) for sku, name in rng.sample(CATALOGUE, rng.randint(1, 4))]


def _reference(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(9))


def ship(warehouse: Warehouse, rng: random.Random, source: tuple[int, str], carrier: int, *, take=None, reliquat=True) -> str:
    """Transform into a delivery note and type its tracking number where this company types it."""
    number = tracking_number(rng, carrier)
    style = rng.random()
    if carrier == 3 and "Ref Chronopost" in warehouse.h.c:
        return warehouse.transform(source, DocumentType.BON_DE_LIVRAISON, take=take, reliquat=reliquat, header={"Ref Chronopost": number})
    if style < 0.7:
        return warehouse.transform(source, DocumentType.BON_DE_LIVRAISON, take=take, reliquat=reliquat, header={"DO_Coord01": number})
    piece = warehouse.transform(source, DocumentType.BON_DE_LIVRAISON, take=take, reliquat=reliquat)
    warehouse.set_lines(DocumentType.BON_DE_LIVRAISON, piece, DL_NoColis=number)
    return piece


def _new_order(warehouse: Warehouse, rng: random.Random, shop_rng: random.Random, key: str, souche: int, carrier: int) -> str:
    """A web order of the shop whose series is `souche`: the B2B shop's customers are professionals buying by the box."""
    lines = _order_lines(rng)
    if souche == DEFAULT_SOUCHE:
        return warehouse.create_order(key, lines, reference=_reference(rng), carrier=carrier, customer=WEB_CUSTOMER)
    lines = [(sku, name, quantity * shop_rng.choice((5, 10, 12))) for sku, name, quantity in lines]
    customer = shop_rng.choice(PRO_CUSTOMERS)
    return warehouse.create_order(key, lines, reference=_reference(rng), carrier=carrier, customer=customer, souche=souche)


def generate_demo(engine: Engine, orders: int = 300, seed: int = 7, now: datetime | None = None, pro_share: float = PRO_SHARE) -> dict:
    """Create the demo base from scratch: `orders` web orders, `pro_share` of them the B2B shop's (souche 1; the
    second order always is, so id_order 1001 is in both shops). Returns how many orders ended at each stage."""
    rng = random.Random(seed)
    shop_rng = random.Random(f"{seed}:shops")  # its own stream: each order's history is the same whatever its shop
    create_gescom(engine)
    now = now or datetime.now()
    clock = Clock(now - timedelta(days=20))
    warehouse = Warehouse(engine, clock)
    counts: dict[str, int] = {}
    step = timedelta(days=19) / max(orders, 1)
    open_bls: list[tuple[str, str]] = []
    next_key = {DEFAULT_SOUCHE: FIRST_KEY, PRO_SOUCHE: FIRST_KEY}
    for index in range(orders):
        clock.now = now - timedelta(days=20) + step * index
        pro = pro_share > 0 and (index == 1 or (index > 1 and shop_rng.random() < pro_share))
        souche = PRO_SOUCHE if pro else DEFAULT_SOUCHE
        key = str(next_key[souche])
        next_key[souche] += 1
        carrier = rng.choice((2, 2, 2, 3, 4, 5))
        bc = _new_order(warehouse, rng, shop_rng, key, souche, carrier)
        roll = rng.random()
        clock.now += timedelta(hours=rng.randint(2, 30))
        if roll < 0.30:
            stage = "ordered"
        elif roll < 0.40:
            warehouse.transform((1, bc), DocumentType.PREPARATION_DE_LIVRAISON)
            stage = "in_preparation"
        elif roll < 0.50:
            ship(warehouse, rng, (1, bc), carrier, take={warehouse.goods_of(1, bc)[0]: 1})
            stage = "partially_shipped" if len(warehouse.goods_of(1, bc)) else "shipped"
        elif roll < 0.70:
            bl = ship(warehouse, rng, (1, bc), carrier)
            if souche == DEFAULT_SOUCHE:  # an invoice groups delivery notes of one customer account
                open_bls.append((key, bl))
            stage = "shipped"
        elif roll < 0.93:
            bl = ship(warehouse, rng, (1, bc), carrier)
            clock.now += timedelta(days=1)
            invoice = warehouse.transform((3, bl), DocumentType.FACTURE)
            if rng.random() < 0.5:
                warehouse.post(invoice)
            stage = "invoiced"
        elif roll < 0.97:
            warehouse.delete(1, bc)
            stage = "cancelled"
        else:
            bl = ship(warehouse, rng, (1, bc), carrier)
            warehouse.transform((3, bl), DocumentType.BON_DE_RETOUR)
            stage = "returned"
        counts[stage] = counts.get(stage, 0) + 1
    # A grouped invoice: two delivery notes of two shop orders (of the main shop's account) invoiced together.
    if len(open_bls) >= 2:
        (_, first), (_, second) = open_bls[:2]
        warehouse.transform([(3, first), (3, second)], DocumentType.FACTURE)
        counts["shipped"] -= 2
        counts["invoiced"] = counts.get("invoiced", 0) + 2
    # Documents that are not web orders: the middleware must leave them alone.
    for _ in range(5):
        warehouse.create_order("", _order_lines(rng), reference="COMPTOIR", comment=None)
    return counts


def _last_keys(conn, header: Table) -> dict[int, int]:
    """Each shop's (numbering series') highest numeric id_order so far."""
    last = {DEFAULT_SOUCHE: FIRST_KEY - 1, PRO_SOUCHE: FIRST_KEY - 1}
    rows = conn.execute(select(header.c.DO_Souche, header.c.DO_NoWeb).where(header.c.DO_NoWeb != "").distinct())
    for souche, key in rows:
        if key.strip().isdigit():
            souche = souche_number(souche)
            last[souche] = max(last.get(souche, FIRST_KEY - 1), int(key))
    return last


def advance(engine: Engine, count: int = 20, seed: int | None = None, now: datetime | None = None) -> list[str]:
    """Do a warehouse's next steps on some demo orders (and take a few new ones, in each shop). Returns what was done,
    each line naming the order by its key (`1001`, `b2b:1001`)."""
    rng = random.Random(seed)
    warehouse = Warehouse(engine, Clock(now or datetime.now()))
    metadata = MetaData()
    header = Table("F_DOCENTETE", metadata, autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(
            select(header.c.DO_Type, header.c.DO_Piece, header.c.DO_NoWeb, header.c.DO_Expedit, header.c.DO_Souche).where(
                header.c.DO_Domaine == 0, header.c.DO_NoWeb != "", header.c.DO_Type.in_((1, 2, 3, 6))
            )
        ).all()
        last_keys = _last_keys(conn, header)
    done: list[str] = []
    rng.shuffle(rows)
    for doc_type, piece, key, carrier, souche in rows[:count]:
        name = f"order {order_key(souche_number(souche), key)}"
        if doc_type == DocumentType.BON_DE_COMMANDE:
            goods = warehouse.goods_of(1, piece)
            if rng.random() < 0.25 and goods:
                warehouse.transform((1, piece), DocumentType.PREPARATION_DE_LIVRAISON)
                done.append(f"{name}: {piece} prepared")
            elif rng.random() < 0.3 and len(goods) > 1:
                bl = ship(warehouse, rng, (1, piece), carrier, take={goods[0]: 1})
                done.append(f"{name}: {piece} partly delivered by {bl}")
            else:
                bl = ship(warehouse, rng, (1, piece), carrier)
                done.append(f"{name}: {piece} delivered by {bl}")
        elif doc_type == DocumentType.PREPARATION_DE_LIVRAISON:
            bl = ship(warehouse, rng, (2, piece), carrier)
            done.append(f"{name}: {piece} delivered by {bl}")
        elif doc_type == DocumentType.BON_DE_LIVRAISON:
            invoice = warehouse.transform((3, piece), DocumentType.FACTURE)
            done.append(f"{name}: {piece} invoiced as {invoice}")
        elif doc_type == DocumentType.FACTURE:
            warehouse.post(piece)
            done.append(f"{name}: {piece} posted to accounting")
    for _ in range(max(1, count // 10)):
        souche = PRO_SOUCHE if rng.random() < PRO_SHARE else DEFAULT_SOUCHE
        last_keys[souche] += 1
        key = str(last_keys[souche])
        piece = _new_order(warehouse, rng, rng, key, souche, rng.choice((2, 3, 4, 5)))
        done.append(f"order {order_key(souche, key)}: new, imported as {piece}")
    return done
