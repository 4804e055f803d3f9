"""The demo holds two shops (issue 16): orders of the main shop in souche 0 and of shop `b2b` in souche 1, each shop
numbering its own orders (id_order 1001 in both), each series its own pieces; the store's shops made to match,
idempotently; and a run that follows both shops' orders under their own keys (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Integer, inspect, select, text

from models import ShopOrder, SyncRun, Update
from sync.core.shops import ShopClaims
from sync.gescom.demo.generator import FIRST_KEY, advance, generate_demo
from sync.gescom.demo.shops import PRO_SHOP, demo_shop_changes, order_key
from sync.store.shops import core_shop, create_shop, get_shop, list_shops, update_shop

WEB_ORDERS = 'SELECT DISTINCT "DO_Souche", "DO_NoWeb" FROM "F_DOCENTETE" WHERE "DO_NoWeb" != \'\''


def _web_orders(engine) -> set[tuple[int, str]]:
    """(souche, id_order) of every web order with a document in the base."""
    with engine.connect() as conn:
        return {(int(souche), key) for souche, key in conn.execute(text(WEB_ORDERS))}


def _apply(session, changes) -> None:
    """Apply the demo's shop changes as the store's functions do (the caller's part of demo_shops)."""
    for change in changes:
        if change.create:
            create_shop(session, change.document)
        else:
            update_shop(session, change.code, change.document)


def _shop_documents(session) -> list[dict]:
    return [core_shop(row).to_document() for row in list_shops(session)]


def _make_demo_shops(session) -> None:
    _apply(session, demo_shop_changes(_shop_documents(session)))
    session.commit()  # the test is the entry point here


# --- the demo base -----------------------------------------------------------------------------------------------


def test_the_demo_holds_two_shops_told_apart_by_their_numbering_series(gescom):
    counts = generate_demo(gescom.engine, orders=120, seed=7)
    assert sum(counts.values()) == 120
    orders = _web_orders(gescom.engine)
    main = {key for souche, key in orders if souche == 0}
    pro = {key for souche, key in orders if souche == 1}
    assert {souche for souche, _ in orders} == {0, 1}
    assert 0.15 < len(pro) / len(orders) < 0.45  # about 30 % of the orders are the B2B shop's
    # Each shop numbers its own orders from 1001: some id_orders are in both, and only the souche tells them apart.
    assert str(FIRST_KEY) in main and str(FIRST_KEY) in pro and len(main & pro) >= 10
    with gescom.engine.connect() as conn:
        pieces = conn.execute(text('SELECT "DO_Souche", "DO_Type", "DO_Piece", "DO_Tiers" FROM "F_DOCENTETE" WHERE "DO_NoWeb" != \'\'')).all()
        series = dict(conn.execute(text('SELECT "cbIndice" - 1, "S_Intitule" FROM "P_SOUCHEVENTE" WHERE "S_Intitule" != \'\'')).all())
        current = {tuple(row) for row in conn.execute(text('SELECT "DC_IdCol", "DC_Souche" FROM "F_DOCCURRENTPIECE"'))}
    # Souche 1 has its own numbers (BCP00001...), so the two series' pieces never collide.
    assert all(piece[2] == "P" for souche, _, piece, _ in pieces if souche == 1)
    assert all(piece[2:].isdigit() for souche, _, piece, _ in pieces if souche == 0)
    assert {(1, 0), (1, 1), (3, 0), (3, 1)} <= current
    # The main shop's orders are on one web account, the B2B shop's on professional accounts.
    assert {tiers for souche, _, _, tiers in pieces if souche == 0} == {"CWEB"}
    assert "CWEB" not in {tiers for souche, _, _, tiers in pieces if souche == 1}
    assert set(series) == {0, 1}
    # DO_Souche is a smallint, as in a real base (not text).
    column = next(column for column in inspect(gescom.engine).get_columns("F_DOCENTETE") if column["name"] == "DO_Souche")
    assert isinstance(column["type"], Integer)


def test_a_demo_of_one_shop_on_request(gescom):
    generate_demo(gescom.engine, orders=20, seed=7, pro_share=0)
    orders = _web_orders(gescom.engine)
    assert {souche for souche, _ in orders} == {0} and len({key for _, key in orders}) == len(orders)


def test_a_transformed_document_stays_in_its_shops_series(gescom):
    generate_demo(gescom.engine, orders=80, seed=3)
    with gescom.engine.connect() as conn:
        rows = conn.execute(
            text(
                'SELECT h."DO_Souche", l."DL_PieceBC" FROM "F_DOCLIGNE" l JOIN "F_DOCENTETE" h '
                'ON h."DO_Domaine" = l."DO_Domaine" AND h."DO_Type" = l."DO_Type" AND h."DO_Piece" = l."DO_Piece" '
                'WHERE l."DO_Type" IN (2, 3, 6, 7) AND l."DL_PieceBC" != \'\''
            )
        ).all()
    assert rows and {souche for souche, _ in rows} == {0, 1}
    assert all((piece.startswith("BCP")) == (souche == 1) for souche, piece in rows)


def test_advance_moves_both_shops_orders_and_takes_new_ones_in_each_series(gescom):
    generate_demo(gescom.engine, orders=60, seed=7)
    before = _web_orders(gescom.engine)
    done = advance(gescom.engine, count=80, seed=2)
    assert any(line.startswith("order b2b:") for line in done) and any(line.startswith("order 1") for line in done)
    new = _web_orders(gescom.engine) - before
    assert {souche for souche, _ in new} == {0, 1}
    for souche in (0, 1):
        last = max(int(key) for s, key in before if s == souche)
        taken = sorted(int(key) for s, key in new if s == souche)
        assert taken == list(range(last + 1, last + 1 + len(taken)))  # each shop goes on with its own numbers
        assert all(f"order {order_key(souche, str(key))}: new, imported as " in "\n".join(done) for key in taken)


# --- the store's shops -------------------------------------------------------------------------------------------


def test_the_demo_shops_are_made_once_and_are_a_valid_set(session):
    assert [change.code for change in demo_shop_changes(_shop_documents(session))] == ["default", "b2b"]
    _make_demo_shops(session)
    documents = {document["code"]: document for document in _shop_documents(session)}
    assert documents["default"]["rule"] == {"kind": "souche", "field": None, "values": [0]}
    assert documents["default"]["name"] == "Boutique principale" and documents["default"]["is_default"] is True
    assert documents["b2b"]["rule"] == {"kind": "souche", "field": None, "values": [1]}
    assert documents["b2b"]["name"] == "Boutique pro" and documents["b2b"]["is_default"] is False
    claims = ShopClaims(core_shop(row) for row in list_shops(session))
    assert claims.claim({"DO_Souche": 1}, "1001")[0].code == "b2b" and claims.claim({"DO_Souche": 0}, "1001")[0].code == "default"
    assert claims.claim({"DO_Souche": 2}, "1001") is None
    assert demo_shop_changes(_shop_documents(session)) == []  # idempotent: nothing left to change
    b2b_id = get_shop(session, "b2b").id
    _make_demo_shops(session)
    assert [row.code for row in list_shops(session)] == ["default", "b2b"] and get_shop(session, "b2b").id == b2b_id


def test_the_demo_shops_mend_a_store_half_way(session):
    update_shop(session, "default", {"rule": {"kind": "souche", "values": [0, 1]}})
    session.commit()
    _make_demo_shops(session)
    update_shop(session, "b2b", {"name": "Pro"})
    session.commit()
    assert [(change.code, change.document, change.create) for change in demo_shop_changes(_shop_documents(session))] == [
        ("b2b", {"name": PRO_SHOP["name"]}, False)
    ]
    _make_demo_shops(session)
    assert demo_shop_changes(_shop_documents(session)) == []


def test_flask_demo_init_sets_up_the_two_shops_once(app, runner):
    from models import db

    result = runner.invoke(args=["demo", "init", "--orders", "30"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert demo_shop_changes(_shop_documents(db.session)) == []
        shops = [(row.id, row.code) for row in list_shops(db.session)]
        assert [code for _, code in shops] == ["default", "b2b"]
    again = runner.invoke(args=["demo", "init", "--orders", "30", "--force"])
    assert again.exit_code == 0, again.output
    with app.app_context():
        assert [(row.id, row.code) for row in list_shops(db.session)] == shops


# --- a run on the demo -------------------------------------------------------------------------------------------


def test_a_run_on_the_demo_follows_each_shops_orders_under_its_own_key(session, gescom, sync):
    generate_demo(gescom.engine, orders=60, seed=7)
    gescom.refresh()
    _make_demo_shops(session)
    ids = {row.code: row.id for row in list_shops(session)}
    result = sync.run()
    followed = {row.order_key: row for row in session.scalars(select(ShopOrder))}
    assert set(followed) == {order_key(souche, key) for souche, key in _web_orders(gescom.engine)}
    assert {"1001", "b2b:1001"} <= set(followed)
    for key, row in followed.items():
        assert row.shop_id == (ids["b2b"] if key.startswith("b2b:") else ids["default"]), key
        assert row.id_order == int(key.removeprefix("b2b:")), key  # id_order stays the shop's own number
    updates = list(session.scalars(select(Update)))
    assert {update.shop_id for update in updates} == {ids["default"], ids["b2b"]}
    assert all(update.shop_id == followed[update.order_key].shop_id for update in updates)
    run = session.get(SyncRun, result.run.id)
    assert run.documents_unclaimed == 0
