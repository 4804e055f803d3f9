"""`flask gescom check`: what the sync will rely on in this GesCom base, in lines a person can act on.

Each check is `ok`; `warn` (the sync works, but slower than it could or with a write-back that will be refused:
a table scan on a real base, a right not granted); `fail` (the sync cannot run as configured); or `n/a` (a
SQL Server-only check on the demo and test bases). The companion of `flask shop check`; no Flask here: the
caller passes the settings and the app config.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection, Inspector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Select

from sync.core.settings import Settings
from sync.gescom.adapter import HEADER_REQUIRED, LINE_REQUIRED, GesCom
from sync.gescom.catalog import MODIFICATION, RELIED_ON, Catalog, KeyRule
from sync.gescom.errors import GesComError, reason_of
from sync.gescom.write import RECORD_LOCK_FUNCTION
from sync.services.run_config import RunConfig

OK, WARN, FAIL, NA = "ok", "warn", "fail", "n/a"
LABELS = {OK: "ok", WARN: "WARN", FAIL: "FAIL", NA: "n/a"}
SQL_SERVER_ONLY = "(SQL Server only)"
REQUIRED_TABLES = {"F_DOCENTETE": HEADER_REQUIRED, "F_DOCLIGNE": LINE_REQUIRED}
OPTIONAL_TABLES = {
    "P_EXPEDITION": "carriers have no name and carriage lines are counted as goods",
    "cbSysLibre": "free fields are not listed as such, and a tracking number from the shop is written back only into DO_Coord01-04",
}
SECRET_QUERY_KEYS = {"odbc_connect", "password", "pwd"}
DIALECTS = {"mssql": "SQL Server", "postgresql": "PostgreSQL", "sqlite": "SQLite"}
# Pairs of shop order keys that show, in words, how the base's collation compares them.
KEY_EXAMPLES = (("4711 ", "4711"), ("khwtqzxnb", "KHWTQZXNB"), ("cafe", "café"))


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    status: str  # OK, WARN, FAIL or NA
    detail: str


def check_gescom(gescom: GesCom, settings: Settings, config) -> list[Check]:
    """Every check, in reading order. When the base cannot be reached, or lacks a table or column the sync
    needs, the checks stop there (what follows would only repeat the failure)."""
    checks: list[Check] = []
    gescom.refresh()  # the base as it is now, not as this process first read it
    try:
        with gescom.connect() as conn:
            checks.append(_connection(conn))
            found, columns = _tables(inspect(conn), gescom.schema_name)
            checks += found
            if failed(found):
                return checks + [Check("Tables and columns", "other checks", NA, "not run: fix the failures above first")]
            checks += _fields(columns, settings)
            catalog, tables = gescom.catalog, gescom.tables
            checks += _shadows(catalog)
            checks += _indexes(catalog)
            checks += _collations(catalog, tables, settings.link_field)
            checks += _isolation(catalog, gescom.read_lock_timeout_ms)
            checks += _record_lock(conn, gescom.schema_name, settings)
            checks += _permissions(conn, gescom.schema_name, settings)
            checks += _strategy(catalog, RunConfig.from_mapping(config))
    except GesComError as error:
        checks.append(Check("Connection", "GesCom", FAIL, f"{error} (GESCOM_DATABASE_URL, GESCOM_SCHEMA)"))
    except SQLAlchemyError as error:
        checks.append(Check("Connection", "GesCom", FAIL, f"GesCom query failed: {reason_of(error)}"))
    return checks


def failed(checks: list[Check]) -> list[Check]:
    return [check for check in checks if check.status == FAIL]


def render(checks: list[Check], width: int = 110) -> str:
    """The checks under their section titles, one status and name per line, then a one-line summary."""
    name_width = max(len(check.name) for check in checks)
    lines: list[str] = []
    section = None
    for check in checks:
        if check.section != section:
            section = check.section
            lines.append(section if not lines else f"\n{section}")
        prefix = f"  {LABELS[check.status]:<4}  {check.name:<{name_width}}  "
        wrapped = textwrap.wrap(
            check.detail,
            width,
            initial_indent=prefix,
            subsequent_indent=" " * len(prefix),
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines += wrapped or [prefix.rstrip()]
    counts = Counter(check.status for check in checks)
    verdict = "the sync cannot run as configured" if counts[FAIL] else "the sync can run"
    warnings = f"{counts[WARN]} warning" + ("" if counts[WARN] == 1 else "s")
    lines.append(f"\n{counts[FAIL]} failed, {warnings}, {counts[OK]} ok, {counts[NA]} n/a: {verdict}.")
    return "\n".join(lines)


# --- the base and its tables ------------------------------------------------------------------------------


def _connection(conn: Connection) -> Check:
    """Where we are connected, without the password (nor a whole ODBC connection string, which may carry one)."""
    url = conn.engine.url
    url = url.set(query={key: "hidden" if key.lower() in SECRET_QUERY_KEYS else value for key, value in url.query.items()})
    dialect = conn.dialect
    server = " ".join([DIALECTS.get(dialect.name, dialect.name), ".".join(str(part) for part in dialect.server_version_info or ())])
    return Check("Connection", "GesCom", OK, f"{url.render_as_string(hide_password=True)} ({server.strip()})")


def _tables(inspector: Inspector, schema: str | None) -> tuple[list[Check], dict[str, set[str]]]:
    """The Sage tables, and the columns of the two the sync reads (those found)."""
    section = "Tables and columns"
    checks: list[Check] = []
    columns: dict[str, set[str]] = {}
    for name, required in REQUIRED_TABLES.items():
        if not inspector.has_table(name, schema=schema):
            checks.append(
                Check(
                    section,
                    name,
                    FAIL,
                    (
                        "not found (or this login may not see it): is GESCOM_DATABASE_URL the Sage company database? "
                        "Set GESCOM_SCHEMA=dbo if the login's default schema is another one"
                    ),
                )
            )
            continue
        columns[name] = {column["name"] for column in inspector.get_columns(name, schema=schema)}
        missing = [column for column in required if column not in columns[name]]
        checks.append(
            Check(
                section,
                name,
                FAIL if missing else OK,
                (
                    f"lacks the Sage columns {', '.join(missing)}: not a Sage 100 GesCom table?"
                    if missing
                    else f"found ({len(columns[name])} columns), with the ones the sync reads: {', '.join(required)}"
                ),
            )
        )
    for name, without in OPTIONAL_TABLES.items():
        found = inspector.has_table(name, schema=schema)
        checks.append(Check(section, name, OK if found else WARN, "found" if found else f"not found or not readable: {without}"))
    return checks, columns


def _fields(columns: dict[str, set[str]], settings: Settings) -> list[Check]:
    """DO_NoWeb, and the configured link and tracking columns."""
    fields = [
        ("link_field", "F_DOCENTETE", settings.link_field),
        ("tracking.header_field", "F_DOCENTETE", settings.tracking.header_field),
        ("tracking.line_field", "F_DOCLIGNE", settings.tracking.line_field),
    ]
    checks = [_no_web(columns["F_DOCENTETE"], settings.link_field)]
    return checks + [_configured(setting, table, value, columns[table]) for setting, table, value in fields if value]


def _no_web(header: set[str], link_field: str) -> Check:
    use = "the configured link field" if link_field == "DO_NoWeb" else f"not used: the link field is {link_field}"
    if "DO_NoWeb" in header:
        return Check("Tables and columns", "DO_NoWeb", OK, f"found, where PrestaConnect keeps the shop order id ({use})")
    return Check("Tables and columns", "DO_NoWeb", NA, "absent from this base: the link field must be another header column")


def _configured(setting: str, table: str, value: str, columns: set[str]) -> Check:
    if value in columns:
        return Check("Tables and columns", setting, OK, f"{table}.{value} found")
    return Check(
        "Tables and columns",
        setting,
        FAIL,
        (
            f"{table} has no column {value!r} (renamed or removed in Sage?): "
            f"flask settings set {setting}=<a {table} column>, or fix the column in Sage"
        ),
    )


# --- how the sync finds rows: shadow columns, indexes, collation -------------------------------------------


def _shadows(catalog: Catalog) -> list[Check]:
    """Each text column looked up by value, and whether its indexed shadow column can be used for that."""
    checks = []
    for (table, source), shadow in catalog.shadows.items():
        if shadow.usable:
            detail = f"{shadow.column} = {shadow.definition}: look-ups by {source} seek its index"
            checks.append(Check("Shadow columns", f"{table}.{source}", OK, detail))
        else:
            detail = f"{shadow.note}. Correct, but on a real base every such look-up reads the whole table"
            checks.append(Check("Shadow columns", f"{table}.{source}", WARN, detail))
    return checks


def _indexes(catalog: Catalog) -> list[Check]:
    checks = []
    for table, indexes in catalog.indexes.items():
        listed = ", ".join(f"{name} ({', '.join(columns)})" for name, columns in indexes)
        checks.append(Check("Indexes", table, OK if indexes else WARN, listed or "none found"))
    missing = catalog.missing_indexes()
    for wanted in missing:
        checks.append(
            Check(
                "Indexes",
                "missing",
                WARN,
                (f"no index led by {wanted}: the look-ups it serves read the whole table. A Sage base has one; ask the DBA whether it was dropped"),
            )
        )
    if not missing:
        relied = [f"{_index_led_by(catalog, table, columns)} ({', '.join(columns)})" for table, wanted in RELIED_ON.items() for columns in wanted]
        checks.append(Check("Indexes", "relied on", OK, f"all present: {', '.join(relied)}"))
    return checks


def _index_led_by(catalog: Catalog, table: str, columns: tuple[str, ...]) -> str:
    return next(name for name, found in catalog.indexes.get(table, []) if tuple(found[: len(columns)]) == columns)


def _collations(catalog: Catalog, tables: dict, link_field: str) -> list[Check]:
    """The collation of the link and piece columns, and the rule shop order keys follow because of it."""
    header, line = tables["F_DOCENTETE"], tables["F_DOCLIGNE"]
    columns = [(header, link_field), (header, "DO_Piece"), (line, "DO_Piece"), (line, "DL_PieceBC")]
    checks = [Check("Collation", f"{table.name}.{name}", OK, _collation_of(catalog, table, name)) for table, name in columns if name in table.c]
    checks.append(Check("Collation", "shop order keys", OK, describe_key_rule(catalog.key_rule(header, link_field))))
    return checks


def _collation_of(catalog: Catalog, table, name: str) -> str:
    collation = catalog.collation(table, name)
    if collation is None:
        return "none declared: compared as binary"
    if collation == catalog.database_collation and not getattr(table.c[name].type, "collation", None):
        return f"{collation} (the database's default)"
    return collation


def describe_key_rule(rule: KeyRule) -> str:
    """The rule in words, with examples computed from the rule itself (so the words cannot drift from it)."""
    words = [
        "case-sensitive" if rule.case_sensitive else "case-insensitive",
        "accent-sensitive" if rule.accent_sensitive else "accent-insensitive",
    ]
    same = [f"{a!r} and {b!r}" for a, b in KEY_EXAMPLES if rule(a) == rule(b)]
    apart = [f"{a!r} and {b!r}" for a, b in KEY_EXAMPLES if rule(a) != rule(b)]
    sentences = [_pairs(same, "are one shop order"), _pairs(apart, "are two")]
    return ", ".join(words) + (f" ({rule.collation})" if rule.collation else "") + ": " + "; ".join(filter(None, sentences))


def _pairs(pairs: list[str], verdict: str) -> str:
    if not pairs:
        return ""
    return f"{pairs[0]} {verdict}" + "".join(f", so are {pair}" for pair in pairs[1:])


# --- SQL Server: isolation, Sage's record lock ---------------------------------------------------------------


def _isolation(catalog: Catalog, lock_timeout_ms: int) -> list[Check]:
    names = ("READ_COMMITTED_SNAPSHOT", "ALLOW_SNAPSHOT_ISOLATION", "chain reads", "discovery reads")
    if catalog.dialect != "mssql":
        return [Check("Isolation", name, NA, SQL_SERVER_ONLY) for name in names]
    rcsi, snapshot = catalog.read_committed_snapshot, catalog.snapshot_allowed
    if snapshot:
        chain = "SNAPSHOT: committed data as of the read's start, never waiting behind a Sage transaction"
    elif rcsi:
        chain = f"READ COMMITTED, from row versions (READ_COMMITTED_SNAPSHOT is on), lock timeout {lock_timeout_ms} ms"
    else:
        chain = (
            f"READ COMMITTED with a {lock_timeout_ms} ms lock timeout: an order whose documents a Sage transaction "
            "holds is retried next run. SNAPSHOT would avoid the wait: ALTER DATABASE <company> SET "
            "ALLOW_SNAPSHOT_ISOLATION ON (a DBA's decision: it adds row versions to tempdb)"
        )
    return [
        Check("Isolation", names[0], OK, _on_off(rcsi)),
        Check("Isolation", names[1], OK, _on_off(snapshot)),
        Check("Isolation", names[2], OK, chain),
        Check(
            "Isolation",
            names[3],
            OK,
            (
                "READ UNCOMMITTED: they only nominate shop orders, so they never wait behind nor block a Sage user; "
                "the chain reads decide, from committed data"
            ),
        ),
    ]


def _on_off(value: bool | None) -> str:
    return "unknown (sys.databases not readable)" if value is None else ("on" if value else "off")


def record_lock_statements(schema: str | None) -> tuple[Select, Select]:
    """Whether Sage's record-lock function exists (its OBJECT_ID), and a harmless call of it."""
    owner = schema or "dbo"
    exists = select(func.OBJECT_ID(f"{owner}.{RECORD_LOCK_FUNCTION}"))
    call = select(getattr(getattr(func, owner), RECORD_LOCK_FUNCTION)("F_DOCENTETE", 0))
    return exists, call


def _record_lock(conn: Connection, schema: str | None, settings: Settings) -> list[Check]:
    """CB_FntIsRecordLock guards the tracking write-back: a document open in Sage is not written then. The
    write-back adds it to its UPDATE whenever it exists, so a login that sees it but may not call it fails."""
    if conn.dialect.name != "mssql":
        return [Check("Record lock", RECORD_LOCK_FUNCTION, NA, SQL_SERVER_ONLY)]
    name = f"{schema or 'dbo'}.{RECORD_LOCK_FUNCTION}"
    later = "" if settings.tracking.import_from_shop else " (matters once tracking.import_from_shop is on)"
    exists, call = record_lock_statements(schema)
    if conn.execute(exists).scalar() is None:
        detail = f"{name} not found (or not visible to this login): the tracking write-back cannot skip a document open in Sage"
        return [Check("Record lock", RECORD_LOCK_FUNCTION, OK if later else WARN, detail + later)]
    try:
        answer = conn.execute(call).scalar()
    except SQLAlchemyError as error:
        conn.rollback()
        detail = f"{name} exists but this login cannot call it ({reason_of(error)}): every write-back would fail. GRANT EXECUTE ON {name} TO <login>"
        return [Check("Record lock", RECORD_LOCK_FUNCTION, WARN, detail + later)]
    detail = f"{name} exists and answers ({answer!r} for cbMarq 0): the write-back skips documents open in Sage"
    return [Check("Record lock", RECORD_LOCK_FUNCTION, OK, detail)]


# --- rights of the login --------------------------------------------------------------------------------------


def permission_statement(dialect: str, schema: str | None, table: str, privilege: str) -> Select | None:
    """Whether the login holds `privilege` on `table` (1/0 on SQL Server, true/false on PostgreSQL); None on
    SQLite, where whoever opens the file may do anything."""
    if dialect == "mssql":
        return select(func.HAS_PERMS_BY_NAME(_object_name(dialect, schema, table), "OBJECT", privilege))
    if dialect == "postgresql":
        return select(func.has_table_privilege(_object_name(dialect, schema, table), privilege))
    return None


def _object_name(dialect: str, schema: str | None, table: str) -> str:
    """The table's name as the database's permission functions and GRANT take it."""
    if dialect == "postgresql":
        return f'"{schema}"."{table}"' if schema else f'"{table}"'
    return f"{schema or 'dbo'}.{table}"


def _permissions(conn: Connection, schema: str | None, settings: Settings) -> list[Check]:
    writes = settings.tracking.import_from_shop
    wanted = [("F_DOCENTETE", "SELECT"), ("F_DOCLIGNE", "SELECT"), ("F_DOCENTETE", "UPDATE")]
    checks = []
    for table, privilege in wanted:
        statement = permission_statement(conn.dialect.name, schema, table, privilege)
        if statement is None:
            status, detail = NA, "(file database: whoever may open the file may read and write it)"
        else:
            granted = bool(conn.execute(statement).scalar())
            status, detail = _right(_object_name(conn.dialect.name, schema, table), privilege, granted, writes)
        checks.append(Check("Rights of the login", f"{privilege} on {table}", status, detail))
    return checks


def _right(table: str, privilege: str, granted: bool, writes: bool) -> tuple[str, str]:
    if privilege == "SELECT":
        return (OK, "granted") if granted else (FAIL, f"not granted: GRANT SELECT ON {table} TO <login>")
    if granted:
        safer = "" if writes else "; a read-only login is safer while tracking.import_from_shop is off"
        return OK, f"granted (only the tracking write-back uses it){safer}"
    if writes:
        return WARN, (
            "NOT granted while tracking.import_from_shop is on: every tracking number typed in the shop will fail to "
            f"reach GesCom. GRANT UPDATE ON {table} TO <login>, or turn the setting off"
        )
    # A read-only login is what the docs recommend while nothing is written: not a warning.
    return OK, "not granted: a read-only login, as it should be while tracking.import_from_shop is off"


# --- the detection strategy ----------------------------------------------------------------------------------


def _strategy(catalog: Catalog, run: RunConfig) -> list[Check]:
    """How each run finds what changed, given the indexes found and the app config."""
    section = "Detection strategy"
    scans = any(not shadow.usable for shadow in catalog.shadows.values())
    recheck = (
        "every run, by re-reading open shop orders through the shadow-column indexes"
        + (" (some through text columns: see Shadow columns)" if scans else "")
        + f": up to SYNC_RECHECK_LIMIT={run.recheck_limit} orders per run, each at most every "
        f"SYNC_RECHECK_AGE={_seconds(run.recheck_age)} seconds"
    )
    return [
        Check(section, "new documents and lines", OK, "every run, by cbMarq ranges (the clustered key: cheap at any size)"),
        Check(section, "changes to existing rows", OK, recheck),
        _modification_window(catalog, run),
    ]


def _modification_window(catalog: Catalog, run: RunConfig) -> Check:
    """The cbModification window: every run when both tables have an index led by it, else a safety net."""
    name, overlap = "cbModification window", f"looking back SYNC_OVERLAP_SECONDS={_seconds(run.overlap)} seconds more"
    led = {table: [index for index, columns in indexes if columns and columns[0] == MODIFICATION] for table, indexes in catalog.indexes.items()}
    if catalog.modification_indexed:
        names = ", ".join(index for indexes in led.values() for index in indexes)
        return Check("Detection strategy", name, OK, f"every run, {overlap}: both tables have an index led by cbModification ({names})")
    partly = "".join(
        f"; {table} has {', '.join(indexes)} but {', '.join(other for other in led if not led[other])} has none"
        for table, indexes in led.items()
        if indexes
    )
    if run.full_scan_interval is None:
        return Check(
            "Detection strategy",
            name,
            WARN,
            (
                "never after the first run (SYNC_FULL_SCAN_INTERVAL=0): a change the two reads above miss (a document of "
                f"an order no longer open, edited in Sage) is never seen{partly}"
            ),
        )
    return Check(
        "Detection strategy",
        name,
        OK,
        (
            f"a safety net, at most every SYNC_FULL_SCAN_INTERVAL={_seconds(run.full_scan_interval)} seconds (0 = never), "
            f"{overlap}: it reads both tables whole on a real base, which has no index on cbModification{partly}"
        ),
    )


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())
