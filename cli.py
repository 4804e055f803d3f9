"""Flask CLI: `flask sync run|push|schedule`, `flask demo init|advance`, `flask shop list|create|edit|check|poll`,
`flask gescom check`, `flask apikey create|list|revoke`, `flask settings show|set`. Each command calls services and
prints what they did."""

from __future__ import annotations

import json
import threading
from dataclasses import astuple
from functools import partial

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError

from app import gescom_of, push_options_of, run_config_of, session_in
from models import db
from sync.core.settings import Settings, SettingsError
from sync.core.shops import KINDS
from sync.core.shops import ShopError as InvalidShop
from sync.core.stages import STAGES
from sync.gescom.adapter import GesComError
from sync.gescom.check import check_gescom, failed, render
from sync.gescom.demo.generator import advance, generate_demo
from sync.prestashop.client import ShopError
from sync.prestashop.connections import Connection, key_variable
from sync.prestashop.states import NATIVE_ORDER_STATES, known_state_ids
from sync.services.demo import demo_shops
from sync.services.notifications import DeliveryOptions
from sync.services.push import push_pending
from sync.services.push_retry import pushing_shop_ids
from sync.services.runs import RunInProgress, RunResult, run_sync
from sync.services.scheduler import serve, tick
from sync.services.shop_poll import poll_shop_tracking
from sync.services.unit_of_work import UnitOfWork
from sync.store.keys import SCOPES, ApiKeyError, KeyShopError, create_key, list_keys, revoke_key
from sync.store.settings import current_settings, load_settings, save_settings
from sync.store.shops import create_shop, default_shop, get_shop, list_shops, order_counts, update_shop

sync_cli = AppGroup("sync", help="Detect GesCom changes and produce shop updates.")
demo_cli = AppGroup("demo", help="The generated demo GesCom.")
shop_cli = AppGroup("shop", help="The PrestaShop shops: list, create and change them; check a shop's connection, poll the connected one.")
gescom_cli = AppGroup("gescom", help="The Sage GesCom base (GESCOM_DATABASE_URL).")
apikey_cli = AppGroup("apikey", help="API keys for the REST API (read < write < admin).")
settings_cli = AppGroup("settings", help="Show or change a shop's settings document (--shop; default: the default shop).")
COMMANDS = (sync_cli, demo_cli, shop_cli, gescom_cli, apikey_cli, settings_cli)  # create_app registers them

NO_SHOP = (
    "no shop pushes: set PRESTASHOP_URL and PRESTASHOP_API_KEY (the default shop), or give a shop its webservice address "
    "(flask shop edit CODE --url URL) and its key (PRESTASHOP_API_KEY_<CODE>)"
)
REAL_SAGE_BASE = "GESCOM_DATABASE_URL points to SQL Server, a real Sage base"


def _gescom():
    return gescom_of(current_app)


def _shops():
    """Every shop's connection (app.extensions["shops"]): the push and the shop poll go through each shop's own."""
    return current_app.extensions["shops"]


def _any_shop_pushes() -> bool:
    return bool(pushing_shop_ids(db.session, _shops()))


def _required_shop():
    if not _any_shop_pushes():
        raise click.ClickException(NO_SHOP)
    return _shops()


def _table(rows: list[tuple[str, object]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows)


# --- flask sync -------------------------------------------------------------------------------------------


def _push_and_report() -> None:
    """Push the pending updates to the configured shop, as configured (workers, employee id), and say how it went."""
    with UnitOfWork(db.session) as uow:  # each shop order's results committed as it is pushed
        report = push_pending(uow, _shops(), **push_options_of(current_app))
    counts = f"{report.pushed} pushed, {report.failed} failed, {report.retry_later} to retry later, {report.held} held by a conflict"
    counts += f" ({report.orders} orders)"
    click.echo(f"Push to the shop: {counts}")
    for line in report.details[:50]:
        click.echo(f"  {line}", err=True)
    if report.error:
        raise click.ClickException(f"push stopped: {report.error}")


def _run_with_progress(dry_run: bool, full: bool) -> RunResult:
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Following shop orders", show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        with UnitOfWork(db.session) as uow:  # the run commits each chunk as it goes
            return run_sync(uow, _gescom(), dry_run=dry_run, full=full, config=run_config_of(current_app), progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def _print_run(result: RunResult, dry_run: bool) -> None:
    run = result.run
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0
    click.echo()
    click.echo(f"Run {run.id} {'(dry run) ' if dry_run else ''}{run.status} in {duration:.2f} s")
    rows = [
        ("shop orders checked", run.orders_checked),
        ("shop orders with an update", run.orders_changed),
        ("shop orders skipped", run.orders_skipped),
        *([("documents no shop claims (ignored)", run.documents_unclaimed)] if run.documents_unclaimed else []),
        ("updates " + ("that would be stored" if dry_run else "stored"), run.updates_created),
    ]
    rows += [(f"  change: {change}", count) for change, count in sorted(result.changes.items())]
    rows += [(f"  stage: {stage.value}", result.stages[stage.value]) for stage in STAGES if result.stages.get(stage.value)]
    click.echo(_table(rows))
    if run.skipped:
        click.echo("skipped shop orders (the next run retries them):")
        for entry in run.skipped:
            click.echo(f"  {entry.get('order_key')}: {entry.get('reason')}")
    if run.modified_scan:
        since = run.window_from.isoformat(sep=" ") if run.window_from else "?"
        click.echo(f"safety-net scan (cbModification): yes, changes read from {since} (GesCom's clock)")
    else:
        click.echo("safety-net scan (cbModification): no, only new documents and open orders were read")
    for warning in run.warnings or []:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        for update in result.updates:
            click.echo(json.dumps(update, ensure_ascii=False))


@sync_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Show what would be produced; store nothing.")
@click.option("--full", is_flag=True, help="Re-read every shop order, not only what changed.")
@click.option("--no-push", is_flag=True, help="Do not push the updates to the shop (when one is configured).")
@click.option("--no-deliver", is_flag=True, hidden=True, deprecated="Use --no-push; this name goes in the next release.")
def sync_run(dry_run: bool, full: bool, no_push: bool, no_deliver: bool):
    """Run the detection once, print a summary, then push to the shop when one is configured."""
    try:
        result = _run_with_progress(dry_run, full)
    except RunInProgress as error:
        raise click.ClickException(str(error)) from None
    _print_run(result, dry_run)
    if result.run.status != "succeeded":
        raise click.ClickException(result.run.error or result.run.status)
    if not dry_run and not (no_push or no_deliver) and _any_shop_pushes():
        _push_and_report()


@sync_cli.command("push")
def sync_push():
    """Push pending updates to the shop (PRESTASHOP_URL, PRESTASHOP_API_KEY)."""
    _required_shop()
    _push_and_report()


@sync_cli.command("deliver", hidden=True, deprecated="Use 'flask sync push'; this name goes in the next release.")
def sync_deliver():
    """The old name of `flask sync push`."""
    _required_shop()
    _push_and_report()


def _scheduled_tick(app: Flask, stop: threading.Event) -> None:
    """One tick in a session of its own, removed after it: the next tick starts afresh."""
    with session_in(app) as session:
        webhooks = DeliveryOptions.from_mapping(app.config)  # consumers' endpoints told of the run's updates
        tick(session, gescom_of(app), app.extensions["shops"], run_config_of(app), stop, webhooks=webhooks, **push_options_of(app))


@sync_cli.command("schedule")
@click.option("--interval", type=int, default=None, help="Seconds between runs (default SYNC_INTERVAL).")
@click.option("--max-runs", type=int, default=None, hidden=True)
def sync_schedule(interval: int | None, max_runs: int | None):
    """Run the sync every SYNC_INTERVAL seconds until stopped (SIGTERM/SIGINT): a run, then the push and the shop poll."""
    interval = interval or current_app.config["SYNC_INTERVAL"]
    click.echo(f"Scheduler: a run every {interval} s")
    serve(partial(_scheduled_tick, current_app._get_current_object()), interval, max_runs)


# --- flask demo -------------------------------------------------------------------------------------------


@demo_cli.command("init")
@click.option("--orders", type=int, default=300, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--if-missing", is_flag=True, help="Do nothing when the demo base already exists.")
@click.option("--force", is_flag=True, help="Re-create a base that already holds documents.")
def demo_init(orders: int, seed: int, if_missing: bool, force: bool):
    """Create (or re-create) the demo GesCom at GESCOM_DATABASE_URL. Never on SQL Server: that is Sage's."""
    engine = _gescom().engine
    refusal = f"{REAL_SAGE_BASE}: the demo is never created there"
    if engine.dialect.name == "mssql" and not if_missing:
        raise click.ClickException(refusal)
    exists = inspect(engine).has_table("F_DOCENTETE", schema=_gescom().schema_name)
    if exists and if_missing:
        click.echo("GesCom already there: nothing created.")
        return
    if engine.dialect.name == "mssql":
        raise click.ClickException(refusal)
    if exists:
        with engine.connect() as conn:
            documents = conn.execute(text('SELECT COUNT(*) FROM "F_DOCENTETE"')).scalar()
        if documents and not force:
            raise click.ClickException(f"GESCOM_DATABASE_URL already holds {documents} documents; add --force to replace them with the demo")
    counts = generate_demo(engine, orders=orders, seed=seed)
    _gescom().refresh()
    click.echo(f"Demo GesCom created with {orders} web orders:")
    click.echo(_table(sorted(counts.items())))
    try:
        with UnitOfWork(db.session) as uow:
            changed = demo_shops(uow.session)  # its orders are two shops': souche 0 the default shop's, souche 1 shop b2b's
            uow.commit()
    except InvalidShop as error:
        raise click.ClickException(f"the demo's shops could not be set up: {error} (see flask shop list)") from None
    if changed:
        click.echo(f"Shops set up for the demo: {', '.join(changed)} (the default shop: souche 0; b2b « Boutique pro »: souche 1)")


@demo_cli.command("advance")
@click.option("--count", type=int, default=20, show_default=True, help="How many documents to move on.")
@click.option("--seed", type=int, default=None)
def demo_advance(count: int, seed: int | None):
    """Transform some demo orders as a warehouse would, so the next run has something to send."""
    if _gescom().engine.dialect.name == "mssql":
        raise click.ClickException(f"{REAL_SAGE_BASE}: the demo never changes it")
    for line in advance(_gescom().engine, count=count, seed=seed):
        click.echo(line)


# --- flask shop -------------------------------------------------------------------------------------------


def missing_permissions(allowed: dict[str, set[str]], version, settings: Settings) -> dict[str, set[str]]:
    """Webservice permissions this set-up needs and the key lacks (`version`: the shop's ShopVersion)."""
    needed = {
        "orders": {"GET"},
        "order_histories": {"GET", "POST"},
        "order_carriers": {"GET", "PATCH" if version.supports_patch else "PUT"},
        "order_states": {"GET"},
        "configurations": {"GET"},
    }
    if any(astuple(settings.options)):
        if version.order_page_reads_threads:  # 1.7.7+: the order page shows customer threads' messages
            needed.update({"customer_threads": {"GET", "POST"}, "customer_messages": {"GET", "POST"}, "customers": {"GET"}})
        else:
            needed["messages"] = {"GET", "POST"}
    missing = {resource: methods - allowed.get(resource, set()) for resource, methods in needed.items()}
    return {resource: methods for resource, methods in missing.items() if methods}


def _print_order_states(connection: Connection) -> None:
    states = connection.states() or []
    click.echo("Order states:")
    for state in states:
        names = " / ".join(str(name) for name in state["name"].values())
        keys = f"  [{', '.join(state['config_keys'])}]" if state["config_keys"] else ""
        click.echo(f"  {state['id']:>3}  {names}{keys}")


def _named_shop(code: str | None):
    """The shop `--shop` names, or the default shop; a bad parameter naming `--shop` when no shop has this code."""
    if code is None:
        return default_shop(db.session)
    shop = get_shop(db.session, code)
    if shop is None:
        codes = ", ".join(row.code for row in list_shops(db.session))
        raise click.BadParameter(f"no shop has the code {code!r}; shops: {codes}", param_hint="'--shop'")
    return shop


def _connection_of(shop) -> Connection:
    """The shop's webservice connection; a message saying how to configure it when it has none."""
    connection = current_app.extensions["shops"].get(shop)
    if connection is not None:
        return connection
    if shop.is_default and not shop.prestashop_url:
        raise click.ClickException(NO_SHOP)
    url, _key = current_app.extensions["shops"].address_of(shop)
    if not url:
        raise click.ClickException(f"shop {shop.code} has no webservice address: flask shop edit {shop.code} --url https://its-shop.example/api")
    raise click.ClickException(f"shop {shop.code} has no webservice key: set the environment variable {key_variable(shop.code)}")


@shop_cli.command("check")
@click.option("--shop", "shop_code", metavar="CODE", help="The shop to check (default: the default shop).")
def shop_check(shop_code: str | None):
    """Connect, print the shop version, the permissions the key lacks, and the order state ids."""
    shop = _named_shop(shop_code)
    connection = _connection_of(shop)
    client = connection.client
    try:
        version = client.detect_version()
        allowed = client.permissions()
    except ShopError as error:
        raise click.ClickException(str(error)) from None
    missing = missing_permissions(allowed, version, load_settings(db.session, shop.id))
    click.echo(f"Shop: {client.base} — PrestaShop {version.raw} ({'PATCH' if version.supports_patch else 'GET + full PUT'} for tracking numbers)")
    click.echo(
        "Messages: "
        + (
            "private messages on the order's customer thread (customer_threads, customer_messages), as the order page shows them"
            if version.order_page_reads_threads
            else "private order messages (messages), as this version's order page shows them"
        )
    )
    try:
        click.echo(f"Writes: {client.probe_write_method()}")
    except ShopError as error:
        raise click.ClickException(str(error)) from None
    if missing:
        click.echo("Missing permissions for this key (Advanced parameters › Webservice):")
        for resource, methods in missing.items():
            click.echo(f"  {resource}: {', '.join(sorted(methods))}")
    else:
        click.echo("Permissions: everything needed is granted.")
    _print_order_states(connection)
    if missing:
        raise click.ClickException(f"{len(missing)} resource(s) lack permissions")


@shop_cli.command("poll")
def shop_poll():
    """Bring tracking numbers typed in the shop into GesCom now (tracking.import_from_shop)."""
    connections = _required_shop()
    try:
        with UnitOfWork(db.session) as uow:  # each number written to GesCom committed as it is
            report = poll_shop_tracking(uow, _gescom(), connections)
    except ShopError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{report.orders_seen} shop orders read; {report.written} tracking numbers written to GesCom")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


@shop_cli.command("list")
def shop_list():
    """The shops in the store: code, name, how Sage tells their orders apart, push mode, shop orders followed."""
    counts = order_counts(db.session)
    for shop in list_shops(db.session):
        default = " (default)" if shop.is_default else ""
        push = "push on" if _shops().get(shop) is not None else "push off"
        rule = json.dumps(shop.rule, sort_keys=True)
        click.echo(f"{shop.code}{default}\t{shop.name or ''}\t{rule}\t{push}\t{counts.get(shop.id, 0)} shop orders")


# The option of `flask shop create|edit` each field of a shop names (ShopError.field's first part).
SHOP_OPTIONS = {
    "code": "CODE",
    "is_default": "CODE",
    "name": "--name",
    "kind": "--rule-kind",
    "field": "--rule-field",
    "values": "--value",
    "rule": "--rule-kind / --value",
    "id_shop": "--id-shop",
    "prestashop_url": "--url",
}


def _shop_option_of(field: str) -> str:
    parts = field.split(".")
    name = parts[1] if parts[0] == "rule" and len(parts) > 1 else parts[0]
    return SHOP_OPTIONS.get(name, "--rule-kind / --value")


def _rule_values(kind: str | None, values: tuple[str, ...]) -> list:
    """--value as the rule holds them: numbering series (souche) are integers, the rest text."""
    if kind != "souche":
        return list(values)
    try:
        return [int(value) for value in values]
    except ValueError:
        raise click.BadParameter("a numbering series (souche) is an integer, e.g. --value 1", param_hint="'--value'") from None


def _cleared_or(value: str, convert=str):
    """An option that may clear its value: 'none' (or nothing) clears it."""
    if value.strip().lower() in ("", "none", "null"):
        return None
    try:
        return convert(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a positive integer (or 'none' to clear it)", param_hint="'--id-shop'") from None


def _changed_rule(current: dict, kind: str | None, field: str | None, values: tuple[str, ...]) -> dict:
    """The rule the options give, completed by the current rule for what they leave out."""
    kind = kind or current.get("kind")
    rule = {"kind": kind}
    if kind == "field":
        rule["field"] = _gescom_spelling(field) if field is not None else current.get("field")
    elif field is not None:
        rule["field"] = field  # refused by the rule itself, naming --rule-field
    same_kind = kind == current.get("kind")
    rule["values"] = _rule_values(kind, values) if values else list(current.get("values", []) if same_kind else [])
    return rule


def _shop_changes(current_rule: dict | None, name, kind, field, values, id_shop, url) -> dict:
    """The fields of a shop document the options give; those not given are left out."""
    document = {}
    if name is not None:
        document["name"] = name
    if id_shop is not None:
        document["id_shop"] = _cleared_or(id_shop, int)
    if url is not None:
        document["prestashop_url"] = _cleared_or(url)
    if kind is not None or field is not None or values:
        document["rule"] = _changed_rule(current_rule or {}, kind, field, values)
    return document


def _gescom_spelling(column: str) -> str:
    """The F_DOCENTETE column `column` as GesCom spells it; a bad parameter naming --rule-field when there is none."""
    from sync.gescom.settings_check import gescom_column

    try:
        _gescom().refresh()  # a free field may have been added in Sage since
        columns = _gescom().schema().header
    except GesComError as error:
        raise click.ClickException(f"--rule-field is checked against GesCom, which is unreachable: {error}") from None
    try:
        return gescom_column(columns, column)
    except InvalidShop as error:
        raise click.BadParameter(error.message, param_hint="'--rule-field'") from None


def _echo_shop(verb: str, row) -> None:
    rule = json.dumps(row.rule, sort_keys=True, ensure_ascii=False)
    click.echo(f"Shop {row.code} {verb}: {row.name}\t{rule}\tid_shop {row.id_shop}\t{row.prestashop_url or 'no webservice address'}")


SHOP_RULE_OPTIONS = (
    click.option("--name", help="The shop's name (1 to 100 characters)."),
    click.option("--rule-kind", "kind", type=click.Choice(KINDS), help="How Sage tells its orders apart (every shop uses the same kind)."),
    click.option("--rule-field", "field", metavar="COLUMN", help="For --rule-kind field: the F_DOCENTETE column (a header or free field)."),
    click.option("--value", "values", multiple=True, metavar="V", help="A value that claims a document (repeat it); souche values are integers."),
    click.option("--id-shop", metavar="N", help="Its id_shop in a PrestaShop multistore installation ('none' clears it)."),
    click.option("--url", metavar="URL", help="Its webservice address, for push mode ('none' clears it); the key: PRESTASHOP_API_KEY_<CODE>."),
)


def _shop_options(command):
    for option in reversed(SHOP_RULE_OPTIONS):
        command = option(command)
    return command


def _saved_shop(change) -> object:
    """Run `change(session)` in a unit of work and commit; a bad parameter naming the option on an invalid shop."""
    try:
        with UnitOfWork(db.session) as uow:
            row = change(uow.session)
            uow.commit()
            return row
    except InvalidShop as error:
        raise click.BadParameter(error.message, param_hint=f"'{_shop_option_of(error.field)}'") from None


@shop_cli.command("create")
@click.argument("code")
@_shop_options
def shop_create(code: str, name, kind, field, values, id_shop, url):
    """Add a shop: `flask shop create b2b --name "Boutique pro" --rule-kind souche --value 2`. No document may match
    two shops: while the default shop's rule is 'all', change it first (flask shop edit default ...)."""
    if name is None or kind is None:
        raise click.UsageError("a new shop needs --name and --rule-kind")
    document = {"code": code, **_shop_changes(None, name, kind, field, values, id_shop, url)}
    row = _saved_shop(lambda session: create_shop(session, document))
    _echo_shop("created", row)


@shop_cli.command("edit")
@click.argument("code")
@_shop_options
def shop_edit(code: str, name, kind, field, values, id_shop, url):
    """Change a shop's name, rule, id_shop or webservice address: only the options given change."""
    shop = get_shop(db.session, code)
    if shop is None:
        raise click.BadParameter(
            f"no shop has the code {code!r}; shops: {', '.join(row.code for row in list_shops(db.session))}", param_hint="'CODE'"
        )
    changes = _shop_changes(shop.rule, name, kind, field, values, id_shop, url)
    row = _saved_shop(lambda session: update_shop(session, shop.code, changes))
    _echo_shop("changed", row)


# --- flask gescom -----------------------------------------------------------------------------------------


@gescom_cli.command("check")
def gescom_check():
    """Print what the sync relies on in GesCom (tables, shadow columns, indexes, collation, isolation, rights,
    detection strategy); exit 1 when something required is missing."""
    try:
        settings = load_settings(db.session)
    except SQLAlchemyError as error:
        raise click.ClickException(f"the store cannot be read (DATABASE_URL; flask db upgrade?): {getattr(error, 'orig', None) or error}") from None
    checks = check_gescom(_gescom(), settings, current_app.config)
    click.echo(render(checks))
    if failed(checks):
        raise click.ClickException(f"{len(failed(checks))} check(s) failed")


# --- flask apikey -----------------------------------------------------------------------------------------


@apikey_cli.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(SCOPES), default="read", show_default=True)
@click.option("--shop", "shop_code", metavar="CODE", help="The shop a read or write key sees (default: the default shop); admin keys see all.")
def apikey_create(name: str, scope: str, shop_code: str | None):
    """Create a key and print it once (the last line of output is the key alone)."""
    try:
        with UnitOfWork(db.session) as uow:
            row, key = create_key(uow.session, name, scope, shop_code)
            shop = "every shop" if row.shop_id is None else f"shop {shop_code or 'default'}"
            uow.commit()
    except KeyShopError as error:
        raise click.BadParameter(str(error), param_hint="'--shop'") from None
    except ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"API key {row.name!r} created with scope {row.scope}, for {shop}. It is shown only now; store it safely:", err=True)
    click.echo(key)


@apikey_cli.command("list")
def apikey_list():
    """Keys with their scope and use (never the keys themselves)."""
    rows = list_keys(db.session)
    if not rows:
        click.echo("No API keys yet: flask apikey create NAME --scope read|write|admin")
    codes = {shop.id: shop.code for shop in list_shops(db.session)}
    for row in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        used = f"last used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
        shop = "all" if row.shop_id is None else codes.get(row.shop_id, row.shop_id)
        click.echo(f"{row.name}\t{row.prefix}…\t{row.scope}\t{shop}\t{state}\t{used}")


@apikey_cli.command("revoke")
@click.argument("name")
def apikey_revoke(name: str):
    """Revoke a key: it stops working at once."""
    try:
        with UnitOfWork(db.session) as uow:
            row = revoke_key(uow.session, name)
            uow.commit()
    except ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"API key {row.name!r} revoked.")


# --- flask settings ---------------------------------------------------------------------------------------


def _echo_settings(document: dict, version: int) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    click.echo(f"(version {version})", err=True)


def settings_patch(assignments: tuple[str, ...]) -> dict:
    """`a.b=value` assignments as a nested patch; values are JSON, bare words text."""
    patch: dict = {}
    for assignment in assignments:
        path, sep, raw = assignment.partition("=")
        if not sep:
            raise click.BadParameter(f"{assignment!r} is not path=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = patch
        *parents, leaf = path.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return patch


SHOP_OPTION = click.option("--shop", "shop_code", metavar="CODE", help="The shop whose settings these are (default: the default shop).")


@settings_cli.command("show")
@SHOP_OPTION
def settings_show(shop_code: str | None):
    """A shop's settings document (another shop's shows the default shop's shared settings: link and tracking fields)."""
    _echo_settings(*current_settings(db.session, _named_shop(shop_code).id))


@settings_cli.command("set")
@click.argument("assignments", nargs=-1, required=True)
@SHOP_OPTION
def settings_set(assignments: tuple[str, ...], shop_code: str | None):
    """Change settings: `flask settings set tracking.header_field=DO_Coord02 stage_states.invoiced=5`.

    Values are JSON (numbers, true/false, null, "text"); bare words are taken as text. link_field and the tracking
    fields are shared by every shop: they are changed in the default shop's settings only.
    """
    patch = settings_patch(assignments)
    shop = _named_shop(shop_code)
    try:
        _gescom().refresh()  # a free field may have been added in Sage since
        schema = _gescom().schema()
    except GesComError as error:
        raise click.ClickException(str(error)) from None
    try:
        provider = current_app.extensions["shops"].states_for(shop)
        states = (provider() if provider else None) or NATIVE_ORDER_STATES
        with UnitOfWork(db.session) as uow:
            document, version = save_settings(uow.session, patch, schema, shop_id=shop.id, known_states=known_state_ids(states))
            uow.commit()
    except SettingsError as error:
        for field, message in error.errors.items():
            click.echo(f"{field}: {message}", err=True)
        raise click.ClickException("settings not saved") from None
    _echo_settings(document, version)


# --- flask openapi postman (beside flask-smorest's `flask openapi print|write`) -----------------------------

from flask_smorest.spec import openapi_cli  # noqa: E402  (flask-smorest's own group)


@openapi_cli.command("postman")
def openapi_postman():
    """Regenerate the Postman collection (docs/postman/) from the OpenAPI document; commit it with the API change."""
    from api.postman import COLLECTION_PATH, write_collection

    changed = write_collection(current_app)
    click.echo(f"{COLLECTION_PATH.name}: {'written' if changed else 'already up to date'}")
