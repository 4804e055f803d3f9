"""Flask CLI: `flask sync run|schedule`, `flask demo init|advance`, `flask gescom check`, `flask settings show|set`."""
from __future__ import annotations

import json
import signal
import threading

import click
from flask import Flask, current_app
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError

from models import db
from sync.store.keys import SCOPES, ApiKeyError, create_key, list_keys, revoke_key
from sync.services.push import deliver_pending
from sync.gescom.demo.generator import advance, generate_demo
from sync.prestashop.states import NATIVE_ORDER_STATES, known_state_ids
from sync.prestashop.client import ShopError
from sync.services.shop_poll import poll_shop_tracking
from sync.gescom.adapter import GesComError
from sync.gescom.check import check_gescom, failed, render
from sync.services.runs import RunConfig, RunInProgress, run_sync
from sync.services.scheduler import run_periodically
from sync.core.settings import SettingsError
from sync.core.stages import STAGES
from sync.store.base import current_settings, save_settings


def _gescom():
    return current_app.extensions["gescom"]


def _shop():
    return current_app.extensions.get("shop")


def _deliver():
    """Push the pending updates to the configured shop, as configured (workers, employee id)."""
    return deliver_pending(
        db.session, _shop(), employee_id=current_app.config["PRESTASHOP_EMPLOYEE_ID"], workers=current_app.config["PRESTASHOP_WORKERS"]
    )


def _deliver_and_report() -> None:
    report = _deliver()
    click.echo(f"Delivery to the shop: {report.delivered} delivered, {report.failed} failed, {report.retry_later} to retry later ({report.orders} orders)")
    for line in report.details[:50]:
        click.echo(f"  {line}", err=True)
    if report.error:
        raise click.ClickException(f"delivery stopped: {report.error}")


def missing_permissions(allowed: dict[str, set[str]], version, settings: dict) -> dict[str, set[str]]:
    """Webservice permissions this set-up needs and the key lacks (`version`: the shop's ShopVersion)."""
    needed = {
        "orders": {"GET"},
        "order_histories": {"GET", "POST"},
        "order_carriers": {"GET", "PATCH" if version.supports_patch else "PUT"},
        "order_states": {"GET"},
        "configurations": {"GET"},
    }
    if any(settings["options"].values()):
        if version.order_page_reads_threads:  # 1.7.7+: the order page shows customer threads' messages
            needed.update({"customer_threads": {"GET", "POST"}, "customer_messages": {"GET", "POST"}, "customers": {"GET"}})
        else:
            needed["messages"] = {"GET", "POST"}
    missing = {resource: methods - allowed.get(resource, set()) for resource, methods in needed.items()}
    return {resource: methods for resource, methods in missing.items() if methods}


def _table(rows: list[tuple[str, object]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows)


def _run_once(dry_run: bool, full: bool, show_progress: bool):
    config = RunConfig.from_mapping(current_app.config)
    if not show_progress:
        return run_sync(db.session, _gescom(), dry_run=dry_run, full=full, config=config)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Following shop orders", show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        return run_sync(db.session, _gescom(), dry_run=dry_run, full=full, config=config, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def register_commands(app: Flask) -> None:
    @app.cli.group()
    def sync():
        """Detect GesCom changes and produce shop updates."""

    @sync.command("run")
    @click.option("--dry-run", is_flag=True, help="Show what would be produced; store nothing.")
    @click.option("--full", is_flag=True, help="Re-read every shop order, not only what changed.")
    @click.option("--no-deliver", is_flag=True, help="Do not push the updates to the shop (when one is configured).")
    def sync_run(dry_run: bool, full: bool, no_deliver: bool):
        """Run the detection once, print a summary, then deliver to the shop when one is configured."""
        try:
            result = _run_once(dry_run, full, show_progress=True)
        except RunInProgress as error:
            raise click.ClickException(str(error)) from None
        run = result.run
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0
        click.echo()
        click.echo(f"Run {run.id} {'(dry run) ' if dry_run else ''}{run.status} in {duration:.2f} s")
        rows = [
            ("shop orders checked", run.orders_checked),
            ("shop orders with an update", run.orders_changed),
            ("shop orders skipped", run.orders_skipped),
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
        if run.status != "succeeded":
            raise click.ClickException(run.error or run.status)
        if not dry_run and not no_deliver and _shop() is not None:
            _deliver_and_report()

    @sync.command("deliver")
    def sync_deliver():
        """Push pending updates to the shop (PRESTASHOP_URL, PRESTASHOP_API_KEY)."""
        if _shop() is None:
            raise click.ClickException("no shop configured: set PRESTASHOP_URL and PRESTASHOP_API_KEY")
        _deliver_and_report()

    @sync.command("schedule")
    @click.option("--interval", type=int, default=None, help="Seconds between runs (default SYNC_INTERVAL).")
    @click.option("--max-runs", type=int, default=None, hidden=True)
    def sync_schedule(interval: int | None, max_runs: int | None):
        """Run the detection every SYNC_INTERVAL seconds until stopped (SIGTERM/SIGINT)."""
        interval = interval or current_app.config["SYNC_INTERVAL"]
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

        def job():
            try:
                config = RunConfig.from_mapping(current_app.config)
                run = run_sync(db.session, _gescom(), config=config, should_stop=stop.is_set).run
                current_app.logger.info(
                    "run %s %s: %s orders checked, %s updates", run.id, run.status, run.orders_checked, run.updates_created
                )
            except RunInProgress:
                current_app.logger.info("a run is already in progress; skipping this tick")
            try:
                if _shop() is not None and not stop.is_set():
                    report = _deliver()
                    current_app.logger.info(
                        "delivery: %s delivered, %s failed, %s to retry%s", report.delivered, report.failed, report.retry_later,
                        f"; stopped: {report.error}" if report.error else "",
                    )
                    polled = poll_shop_tracking(db.session, _gescom(), _shop())
                    if polled.written or polled.warnings:
                        current_app.logger.info("tracking from the shop: %s written to GesCom; %s", polled.written, "; ".join(polled.warnings[:5]))
            except ShopError as error:
                current_app.logger.warning("shop unreachable this tick: %s", error)
            finally:
                db.session.remove()

        click.echo(f"Scheduler: a run every {interval} s")
        run_periodically(job, interval, stop, max_runs)

    @app.cli.group()
    def demo():
        """The generated demo GesCom."""

    @demo.command("init")
    @click.option("--orders", type=int, default=300, show_default=True)
    @click.option("--seed", type=int, default=7, show_default=True)
    @click.option("--if-missing", is_flag=True, help="Do nothing when the demo base already exists.")
    @click.option("--force", is_flag=True, help="Re-create a base that already holds documents.")
    def demo_init(orders: int, seed: int, if_missing: bool, force: bool):
        """Create (or re-create) the demo GesCom at GESCOM_DATABASE_URL. Never on SQL Server: that is Sage's."""
        engine = _gescom().engine
        refusal = "GESCOM_DATABASE_URL points to SQL Server, a real Sage base: the demo is never created there"
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

    @demo.command("advance")
    @click.option("--count", type=int, default=20, show_default=True, help="How many documents to move on.")
    @click.option("--seed", type=int, default=None)
    def demo_advance(count: int, seed: int | None):
        """Transform some demo orders as a warehouse would, so the next run has something to send."""
        if _gescom().engine.dialect.name == "mssql":
            raise click.ClickException("GESCOM_DATABASE_URL points to SQL Server, a real Sage base: the demo never changes it")
        for line in advance(_gescom().engine, count=count, seed=seed):
            click.echo(line)

    @app.cli.group()
    def shop():
        """The PrestaShop shop (push mode)."""

    @shop.command("check")
    def shop_check():
        """Connect, print the shop version, the permissions the key lacks, and the order state ids."""
        client = _shop()
        if client is None:
            raise click.ClickException("no shop configured: set PRESTASHOP_URL and PRESTASHOP_API_KEY")
        try:
            version = client.detect_version()
            allowed = client.permissions()
        except ShopError as error:
            raise click.ClickException(str(error)) from None
        settings, _ = current_settings(db.session)
        missing = missing_permissions(allowed, version, settings)
        click.echo(f"Shop: {client.base} — PrestaShop {version.raw} ({'PATCH' if version.supports_patch else 'GET + full PUT'} for tracking numbers)")
        click.echo("Messages: " + (
            "private messages on the order's customer thread (customer_threads, customer_messages), as the order page shows them"
            if version.order_page_reads_threads else "private order messages (messages), as this version's order page shows them"
        ))
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
        states = current_app.extensions["order_states"]() or []
        click.echo("Order states:")
        for state in states:
            names = " / ".join(str(name) for name in state["name"].values())
            keys = f"  [{', '.join(state['config_keys'])}]" if state["config_keys"] else ""
            click.echo(f"  {state['id']:>3}  {names}{keys}")
        if missing:
            raise click.ClickException(f"{len(missing)} resource(s) lack permissions")

    @shop.command("poll")
    def shop_poll():
        """Bring tracking numbers typed in the shop into GesCom now (tracking.import_from_shop)."""
        if _shop() is None:
            raise click.ClickException("no shop configured: set PRESTASHOP_URL and PRESTASHOP_API_KEY")
        try:
            report = poll_shop_tracking(db.session, _gescom(), _shop())
        except ShopError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"{report.orders_seen} shop orders read; {report.written} tracking numbers written to GesCom")
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)

    @app.cli.group("gescom")
    def gescom_group():
        """The Sage GesCom base (GESCOM_DATABASE_URL)."""

    @gescom_group.command("check")
    def gescom_check():
        """Print what the sync relies on in GesCom (tables, shadow columns, indexes, collation, isolation, rights,
        detection strategy); exit 1 when something required is missing."""
        try:
            settings, _ = current_settings(db.session)
        except SQLAlchemyError as error:
            raise click.ClickException(f"the store cannot be read (DATABASE_URL; flask db upgrade?): {getattr(error, 'orig', None) or error}") from None
        checks = check_gescom(_gescom(), settings, current_app.config)
        click.echo(render(checks))
        if failed(checks):
            raise click.ClickException(f"{len(failed(checks))} check(s) failed")

    @app.cli.group("apikey")
    def apikey():
        """API keys for the REST API (read < write < admin)."""

    @apikey.command("create")
    @click.argument("name")
    @click.option("--scope", type=click.Choice(SCOPES), default="read", show_default=True)
    def apikey_create(name: str, scope: str):
        """Create a key and print it once (the last line of output is the key alone)."""
        try:
            row, key = create_key(db.session, name, scope)
        except ApiKeyError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"API key {row.name!r} created with scope {row.scope}. It is shown only now; store it safely:", err=True)
        click.echo(key)

    @apikey.command("list")
    def apikey_list():
        """Keys with their scope and use (never the keys themselves)."""
        rows = list_keys(db.session)
        if not rows:
            click.echo("No API keys yet: flask apikey create NAME --scope read|write|admin")
        for row in rows:
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            used = f"last used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
            click.echo(f"{row.name}\t{row.prefix}…\t{row.scope}\t{state}\t{used}")

    @apikey.command("revoke")
    @click.argument("name")
    def apikey_revoke(name: str):
        """Revoke a key: it stops working at once."""
        try:
            row = revoke_key(db.session, name)
        except ApiKeyError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"API key {row.name!r} revoked.")

    @app.cli.group("settings")
    def settings_group():
        """Show or change the settings document."""

    @settings_group.command("show")
    def settings_show():
        document, version = current_settings(db.session)
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        click.echo(f"(version {version})", err=True)

    @settings_group.command("set")
    @click.argument("assignments", nargs=-1, required=True)
    def settings_set(assignments: tuple[str, ...]):
        """Change settings: `flask settings set tracking.header_field=DO_Coord02 stage_states.invoiced=5`.

        Values are JSON (numbers, true/false, null, "text"); bare words are taken as text.
        """
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
        try:
            _gescom().refresh()  # a free field may have been added in Sage since
            schema = _gescom().schema()
        except GesComError as error:
            raise click.ClickException(str(error)) from None
        try:
            provider = current_app.extensions.get("order_states")
            states = (provider() if provider else None) or NATIVE_ORDER_STATES
            document, version = save_settings(db.session, patch, schema, known_states=known_state_ids(states))
        except SettingsError as error:
            for field, message in error.errors.items():
                click.echo(f"{field}: {message}", err=True)
            raise click.ClickException("settings not saved") from None
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        click.echo(f"(version {version})", err=True)
