"""Flask CLI: `flask sync run|schedule`, `flask demo init|advance`, `flask settings show|set`."""
from __future__ import annotations

import json
import signal
import threading

import click
from flask import Flask, current_app
from sqlalchemy import inspect, text

from models import db
from sync.apikeys import SCOPES, ApiKeyError, create_key, list_keys, revoke_key
from sync.demo.generator import advance, generate_demo
from sync.gescom import GesComError
from sync.runs import RunConfig, RunInProgress, run_sync
from sync.scheduler import run_periodically
from sync.settings import SettingsError
from sync.stages import STAGES
from sync.store import current_settings, save_settings


def _gescom():
    return current_app.extensions["gescom"]


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
    def sync_run(dry_run: bool, full: bool):
        """Run the detection once and print a summary."""
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
        for warning in run.warnings or []:
            click.echo(f"warning: {warning}", err=True)
        if dry_run:
            for update in result.updates:
                click.echo(json.dumps(update, ensure_ascii=False))
        if run.status != "succeeded":
            raise click.ClickException(run.error or run.status)

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
        for line in advance(_gescom().engine, count=count, seed=seed):
            click.echo(line)

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
            document, version = save_settings(db.session, patch, schema)
        except SettingsError as error:
            for field, message in error.errors.items():
                click.echo(f"{field}: {message}", err=True)
            raise click.ClickException("settings not saved") from None
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        click.echo(f"(version {version})", err=True)
