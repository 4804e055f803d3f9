"""Settings validated against the reflected GesCom schema; the CLI; migrations; the health endpoint."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import click
import pytest
from sqlalchemy import create_engine, inspect, select

from models import ShopOrder, SyncRun, db
from sync.core.settings import DEFAULT_SETTINGS, Settings, SettingsError, merge
from sync.gescom.settings_check import check_settings
from sync.services.run_config import RunConfig
from sync.store.settings import VersionConflict, current_settings, load_settings, save_settings


def test_defaults_are_the_documented_shape(gescom):
    assert check_settings({}, gescom.schema()) == Settings()
    assert Settings().to_document() == DEFAULT_SETTINGS and Settings.from_document(DEFAULT_SETTINGS) == Settings()


def test_unknown_field_names_the_setting_and_the_columns_that_exist(gescom):
    with pytest.raises(SettingsError) as caught:
        check_settings({"tracking": {"header_field": "DO_Cord01"}}, gescom.schema())
    message = caught.value.errors["tracking.header_field"]
    assert "'DO_Cord01' does not exist in F_DOCENTETE" in message
    assert "Did you mean DO_Coord01" in message and "Ref Chronopost" in message and "N° Dossier" in message
    assert "cbDO_Piece" not in message  # technical columns are never offered


def test_field_names_are_matched_like_sql_server_does_and_stored_as_spelled(gescom):
    settings = check_settings({"tracking": {"header_field": "ref chronopost", "line_field": "dl_nocolis"}}, gescom.schema())
    assert settings.tracking.header_field == "Ref Chronopost" and settings.tracking.line_field == "DL_NoColis"


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"link_field": "cbMarq"}, "link_field"),  # technical column
        ({"link_field": "DO_Type"}, "link_field"),  # not text
        ({"link_field": "DO_NoWeb]; DROP TABLE F_DOCLIGNE;--"}, "link_field"),
        ({"tracking": {"line_field": "DO_Coord01"}}, "tracking.line_field"),  # a header column as line field
        ({"shipped_document_type": 6}, "shipped_document_type"),
        ({"shipped_document_type": True}, "shipped_document_type"),
        ({"stage_states": {"shipped": 0}}, "stage_states.shipped"),
        ({"stage_states": {"shipped": "4"}}, "stage_states.shipped"),
        ({"stage_states": {"expedited": 4}}, "stage_states.expedited"),
        ({"tracking": {"state_on_send": -1}}, "tracking.state_on_send"),
        ({"tracking": {"send": "yes"}}, "tracking.send"),
        ({"tracking": {"header_field": None, "line_field": None}}, "tracking.header_field"),
        ({"options": {"send_piece_number": 1}}, "options.send_piece_number"),
        ({"colour": "blue"}, "colour"),
        ({"tracking": "DO_Coord01"}, "tracking"),
    ],
)
def test_bad_settings_name_the_field(gescom, patch, field):
    with pytest.raises(SettingsError) as caught:
        check_settings(patch, gescom.schema())
    assert field in caught.value.errors, caught.value.errors


def test_known_states_are_enforced_when_given(gescom):
    with pytest.raises(SettingsError) as caught:
        check_settings({"stage_states": {"invoiced": 99}}, gescom.schema(), known_states={1, 2, 3, 4, 5})
    assert "unknown order state 99" in caught.value.errors["stage_states.invoiced"]


def test_field_names_cannot_be_checked_without_gescom():
    with pytest.raises(SettingsError) as caught:
        check_settings({}, None)
    assert "unreachable" in caught.value.errors["link_field"]


def test_merge_is_deep_and_refuses_unknown_keys():
    merged = merge(DEFAULT_SETTINGS, {"tracking": {"send": False}})
    assert merged["tracking"]["header_field"] == "DO_Coord01" and merged["tracking"]["send"] is False
    assert DEFAULT_SETTINGS["tracking"]["send"] is True  # defaults untouched


def test_saved_settings_are_versioned(session, gescom):
    assert current_settings(session) == (DEFAULT_SETTINGS, 0)
    document, version = save_settings(session, {"notify_customer": False}, gescom.schema())
    assert version == 1 and document["notify_customer"] is False
    _, version = save_settings(session, {"options": {"send_piece_number": True}}, gescom.schema(), expected_version=1)
    assert version == 2
    with pytest.raises(VersionConflict):
        save_settings(session, {"notify_customer": True}, gescom.schema(), expected_version=1)
    assert current_settings(session)[0]["notify_customer"] is False and load_settings(session).notify_customer is False


# --- CLI ------------------------------------------------------------------------------------------------


def test_demo_then_sync_run_then_nothing_new(runner, app):
    result = runner.invoke(args=["demo", "init", "--orders", "40", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "Demo GesCom created with 40 web orders" in result.output
    result = runner.invoke(args=["sync", "run"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "updates stored" in result.output
    stored = int(next(line for line in result.output.splitlines() if "updates stored" in line).split()[-1])
    assert stored > 20
    again = runner.invoke(args=["sync", "run"])
    assert again.exit_code == 0, again.output
    assert int(next(line for line in again.output.splitlines() if "updates stored" in line).split()[-1]) == 0


def test_demo_advance_gives_the_next_run_something_to_send(runner, app):
    assert runner.invoke(args=["demo", "init", "--orders", "40"]).exit_code == 0
    assert runner.invoke(args=["sync", "run"]).exit_code == 0
    advanced = runner.invoke(args=["demo", "advance", "--count", "10", "--seed", "1"])
    assert advanced.exit_code == 0 and advanced.output.count("order ") >= 10
    result = runner.invoke(args=["sync", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    previews = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(previews) >= 5 and all(p["id"] is None for p in previews)
    real = runner.invoke(args=["sync", "run"])
    assert int(next(line for line in real.output.splitlines() if "updates stored" in line).split()[-1]) == len(previews)


def test_demo_init_if_missing_keeps_an_existing_base(runner, app):
    assert runner.invoke(args=["demo", "init", "--orders", "10"]).exit_code == 0
    result = runner.invoke(args=["demo", "init", "--if-missing"])
    assert result.exit_code == 0 and "already there: nothing created" in result.output
    refused = runner.invoke(args=["demo", "init"])
    assert refused.exit_code != 0 and "--force" in refused.output
    assert runner.invoke(args=["demo", "init", "--orders", "5", "--force"]).exit_code == 0


def test_demo_is_never_created_on_sql_server(runner, app):
    # Only the dialect is looked at before refusing: a stand-in engine that says "mssql" is enough.
    app.extensions["gescom"] = SimpleNamespace(engine=SimpleNamespace(dialect=SimpleNamespace(name="mssql")))
    result = runner.invoke(args=["demo", "init"])
    assert result.exit_code != 0 and "never created there" in result.output


def test_settings_set_and_show(runner, app):
    assert runner.invoke(args=["demo", "init", "--orders", "5"]).exit_code == 0
    result = runner.invoke(
        args=["settings", "set", "tracking.header_field=Ref Chronopost", "stage_states.invoiced=5", "options.send_piece_number=true"]
    )
    assert result.exit_code == 0, result.output
    shown = runner.invoke(args=["settings", "show"])
    document = json.loads(shown.stdout)
    assert document["tracking"]["header_field"] == "Ref Chronopost" and document["stage_states"]["invoiced"] == 5
    assert document["options"]["send_piece_number"] is True


def test_settings_set_refuses_bad_fields_and_says_why(runner, app):
    assert runner.invoke(args=["demo", "init", "--orders", "5"]).exit_code == 0
    result = runner.invoke(args=["settings", "set", "tracking.header_field=Entete1"])
    assert result.exit_code != 0
    assert "tracking.header_field" in result.output and "does not exist" in result.output


def test_sync_run_reports_gescom_unreachable(runner, app, tmp_path):
    from sync.gescom.adapter import GesCom

    app.extensions["gescom"] = GesCom(create_engine(f"sqlite:///{tmp_path}/no/such/dir.db"))
    result = runner.invoke(args=["sync", "run"])
    assert result.exit_code == 1 and "failed" in result.output and "unreachable" in result.output


def test_sync_schedule_runs_ticks_until_told_to_stop(runner, app):
    assert runner.invoke(args=["demo", "init", "--orders", "10"]).exit_code == 0
    result = runner.invoke(args=["sync", "schedule", "--interval", "1", "--max-runs", "2"])
    assert result.exit_code == 0 and "Scheduler: a run every 1 s" in result.output
    with app.app_context():
        assert [run.status for run in db.session.scalars(select(SyncRun).order_by(SyncRun.id))] == ["succeeded", "succeeded"]


def test_sync_deliver_is_a_hidden_deprecated_name_of_sync_push(runner, app):
    listed = runner.invoke(args=["sync", "--help"])
    assert " push " in listed.output and "deliver" not in listed.output
    new, old = runner.invoke(args=["sync", "push"]), runner.invoke(args=["sync", "deliver"])
    assert new.exit_code == old.exit_code == 1 and new.stdout == old.stdout
    assert "no shop pushes: set PRESTASHOP_URL and PRESTASHOP_API_KEY" in old.stderr
    assert "deprecated" not in new.stderr
    assert [line for line in old.stderr.splitlines() if "deprecated" in line] == [
        "DeprecationWarning: The command 'deliver' is deprecated. Use 'flask sync push'; this name goes in the next release."
    ]


def test_settings_assignments_make_a_nested_patch():
    from cli import settings_patch

    assert settings_patch(("tracking.header_field=Ref Chronopost", "stage_states.invoiced=5", "tracking.send=false", "notify_customer=null")) == {
        "tracking": {"header_field": "Ref Chronopost", "send": False},
        "stage_states": {"invoiced": 5},
        "notify_customer": None,
    }
    with pytest.raises(click.BadParameter):
        settings_patch(("tracking.send",))


def test_the_run_config_is_built_once_from_the_app_config(app):
    from app import run_config_of

    assert run_config_of(app) == RunConfig(recheck_age=timedelta(0))  # SYNC_RECHECK_AGE=0 in the test app, defaults otherwise
    assert run_config_of(app) is run_config_of(app)


# --- Migrations and health --------------------------------------------------------------------------------


def test_migrations_build_the_models_schema(app, store_db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade

    with app.app_context():
        db.metadata.drop_all(db.engine)
        upgrade()
        with db.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert differences == []
        assert {"settings", "shop_orders", "order_pieces", "sync_runs", "updates", "sync_locks"} <= set(inspect(db.engine).get_table_names())


def test_migration_0004_makes_stored_keys_compare_like_sql_server(app, store_db):
    """Keys stored before 0004 become what runs now make of them (trailing spaces dropped, upper case), in every
    table that names them; two keys that would become one are left as they were, never merged blindly."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    with app.app_context():
        db.metadata.drop_all(db.engine)
        upgrade(revision="0003")
        with db.engine.begin() as conn:
            for key in ("khwtqzxnb ", "4711", "dup", "DUP"):
                conn.execute(
                    text(
                        "INSERT INTO shop_orders (order_key, state_rank, states_sent, snapshot, memory, is_open, vanished_runs, "
                        "first_seen_at, checked_at, updated_at) "
                        "VALUES (:k, -1, '[]', '{}', '{}', true, 0, '2026-01-01', '2026-01-01', '2026-01-01')"
                    ),
                    {"k": key},
                )
            conn.execute(text("INSERT INTO updates (order_key, changes, created_at) VALUES ('khwtqzxnb ', '[]', '2026-01-01')"))
        upgrade()
        with db.engine.connect() as conn:
            keys = sorted(conn.execute(text("SELECT order_key FROM shop_orders")).scalars())
            assert keys == ["4711", "DUP", "KHWTQZXNB", "dup"]
            assert list(conn.execute(text("SELECT order_key FROM updates")).scalars()) == ["KHWTQZXNB"]
        downgrade(revision="0003")
        upgrade()


def test_migration_0006_says_push_and_keeps_every_value(app, store_db):
    """Rows pushed, failed or pending before 0006 keep their attempts, errors, answers and times under the push
    names ("delivered" becomes "pushed"); ids are never reused; the downgrade gives back the old names and values."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    rows = [  # (status, attempts, error, answer, at)
        ("delivered", 1, None, '{"id_order": 7}', "2026-01-02 10:00:00"),
        ("failed", 2, "order state 99 does not exist in the shop", '{"error": "x"}', None),
        ("pending", 0, None, None, None),
    ]
    with app.app_context():
        db.metadata.drop_all(db.engine)
        upgrade(revision="0005")
        with db.engine.begin() as conn:
            for status, attempts, error, answer, at in [*rows, ("pending", 0, None, None, None)]:
                conn.execute(
                    text(
                        "INSERT INTO updates (order_key, changes, created_at, "
                        "delivery_status, delivery_attempts, delivery_error, delivery_answer, delivered_at) "
                        "VALUES ('4711', '[]', '2026-01-01', :s, :n, :e, :a, :t)"
                    ),
                    {"s": status, "n": attempts, "e": error, "a": answer, "t": at},
                )
            conn.execute(text("DELETE FROM updates WHERE id = 4"))  # the highest id: never given again
            conn.execute(text("INSERT INTO sync_locks (name, holder) VALUES ('delivery', 'worker-1')"))
        upgrade()
        columns = {column["name"] for column in inspect(db.engine).get_columns("updates")}
        assert {"push_status", "push_attempts", "push_error", "push_answer", "pushed_at"} <= columns and not columns & {
            "delivery_status",
            "delivered_at",
        }
        assert "ix_updates_push" in {index["name"] for index in inspect(db.engine).get_indexes("updates")}
        with db.engine.begin() as conn:
            found = conn.execute(text("SELECT push_status, push_attempts, push_error, push_answer, pushed_at FROM updates ORDER BY id")).all()
            assert [(s, n, e, json.loads(a) if isinstance(a, str) else a, str(t)[:19] if t else None) for s, n, e, a, t in found] == [
                ("pushed", 1, None, {"id_order": 7}, "2026-01-02 10:00:00"),
                (*rows[1][:3], {"error": "x"}, None),
                rows[2],
            ]
            assert list(conn.execute(text("SELECT name FROM sync_locks")).scalars()) == ["push"]
            new_id = conn.execute(
                text("INSERT INTO updates (order_key, changes, created_at) VALUES ('4711', '[]', '2026-01-03') RETURNING id")
            ).scalar()
            assert new_id == 5 and conn.execute(text("SELECT push_status, push_attempts FROM updates WHERE id = 5")).one() == ("pending", 0)
        downgrade(revision="0005")
        with db.engine.connect() as conn:
            statuses = conn.execute(text("SELECT delivery_status, delivery_attempts, delivered_at FROM updates ORDER BY id")).all()
            assert [(s, n, str(t)[:19] if t else None) for s, n, t in statuses] == [
                ("delivered", 1, "2026-01-02 10:00:00"),
                ("failed", 2, None),
                ("pending", 0, None),
                ("pending", 0, None),
            ]
            assert list(conn.execute(text("SELECT name FROM sync_locks")).scalars()) == ["delivery"]
        upgrade()


def test_migration_0007_names_the_documents_column_and_keeps_what_it_holds(app, store_db):
    """What each document showed, stored before 0007 in shop_orders.memory, is in shop_orders.documents after it,
    and back in memory after the downgrade."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    seen = {"3:BL00017": {"type": 3, "piece": "BL00017", "tracking": ["6A1"], "seq": 1}}
    with app.app_context():
        db.metadata.drop_all(db.engine)
        upgrade(revision="0006")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO shop_orders (order_key, state_rank, states_sent, snapshot, memory, is_open, vanished_runs, "
                    "first_seen_at, checked_at, updated_at) "
                    "VALUES ('4711', 7, '[4]', '{}', :m, true, 0, '2026-01-01', '2026-01-01', '2026-01-01')"
                ),
                {"m": json.dumps(seen)},
            )
        upgrade()
        assert "memory" not in {column["name"] for column in inspect(db.engine).get_columns("shop_orders")}
        order = db.session.scalars(select(ShopOrder)).one()
        assert order.documents == seen and order.state_rank == 7
        db.session.rollback()
        downgrade(revision="0006")
        with db.engine.connect() as conn:
            stored = conn.execute(text("SELECT memory FROM shop_orders")).scalar()
            assert (json.loads(stored) if isinstance(stored, str) else stored) == seen
        upgrade()


def test_migration_0008_adds_admin_sessions_that_go_with_their_key(app, store_db):
    """0008 makes admin_sessions (a session's rows go when its key is deleted); the downgrade drops it, keys kept."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    with app.app_context():
        db.metadata.drop_all(db.engine)
        upgrade(revision="0007")
        assert "admin_sessions" not in inspect(db.engine).get_table_names()
        upgrade(revision="0008")
        columns = {column["name"]: column["nullable"] for column in inspect(db.engine).get_columns("admin_sessions")}
        assert columns == {"id": False, "api_key_id": False, "created_at": False, "last_seen_at": False, "expires_at": False, "ended_at": True}
        assert [index["column_names"] for index in inspect(db.engine).get_indexes("admin_sessions")] == [["api_key_id"]]
        with db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO api_keys (id, name, key_hash, prefix, scope, created_at) VALUES (1, 'a', :h, 'sgps_abcd', 'admin', '2026-01-01')"),
                {"h": "0" * 64},
            )
            for key_id, name in ((1, "a"), (1, "b")):
                conn.execute(
                    text(
                        "INSERT INTO admin_sessions (id, api_key_id, created_at, last_seen_at, expires_at) "
                        "VALUES (:id, :k, '2026-01-01', '2026-01-01', '2026-01-02')"
                    ),
                    {"id": name * 64, "k": key_id},
                )
            conn.execute(text("DELETE FROM api_keys WHERE id = 1"))
            assert conn.execute(text("SELECT COUNT(*) FROM admin_sessions")).scalar() == 0
            conn.execute(
                text("INSERT INTO api_keys (id, name, key_hash, prefix, scope, created_at) VALUES (2, 'b', :h, 'sgps_efgh', 'read', '2026-01-01')"),
                {"h": "1" * 64},
            )
        downgrade(revision="0007")
        assert "admin_sessions" not in inspect(db.engine).get_table_names()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM api_keys")).scalars().all() == ["b"]
        upgrade()


def test_health_reports_both_databases(client, app, tmp_path):
    from sync.gescom.demo.schema import create_gescom

    create_gescom(app.extensions["gescom"].engine)
    response = client.get("/api/v1/health")
    assert response.status_code == 200 and response.json["checks"]["gescom"]["ok"] is True

    from sync.gescom.adapter import GesCom

    app.extensions["gescom"] = GesCom(create_engine(f"sqlite:///{tmp_path}/no/such/dir.db"))
    down = client.get("/api/v1/health")
    assert down.status_code == 503 and down.json["checks"]["gescom"]["ok"] is False
    assert down.json["checks"]["store"]["ok"] is True


def test_unknown_route_is_a_problem_document(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert response.json["code"] == "not_found"


def test_schema_marks_free_fields_from_cbsyslibre(gescom):
    schema = gescom.schema()
    assert schema.header["Ref Chronopost"].free and schema.header["Ref Chronopost"].length == 21
    assert schema.line["N° de série"].free and not schema.header["DO_Coord01"].free
    assert schema.header["DO_Coord01"].length == 25 and schema.line["DL_NoColis"].length == 19
