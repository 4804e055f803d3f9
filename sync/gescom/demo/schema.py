"""Sage 100c-shaped tables (v3.10 model column set, free fields interleaved), created on SQLite or PostgreSQL
the way a real Sage base is built (Sage reference §8.5), so the demo never flatters the code that runs on it:

- **Only the indexes a real base has**: the clustered key `cbMarq`, `IDO_TPIECE` (`DO_Domaine`, `DO_Type`,
  `cbDO_Piece`) and a few others on the header; `IDL_PIECECOM` (`cbDL_PieceBC`), `IDL_PIECELIVR`,
  `IDL_PIECEPL`, `IDL_PIECEDE`, `IDL_REFLIG` (`cbDO_Ref`), `IDL_STOCK` (`DL_DateBL`), `IDL_NO` and the
  document/line index on the lines. Nothing on `cbModification`, `DO_NoWeb`, the header's `DO_Ref`,
  `DL_NoColis`, `DO_Coord01-04` or free fields: a predicate on those reads the whole table, as on SQL Server.
- **Shadow columns are computed** from their text column (`cbDO_Piece` from `DO_Piece`...), as binary values,
  and the indexes sit on them: SQLite `CAST(col AS BLOB)` generated columns, PostgreSQL stored generated
  columns through the immutable function `sage_varbinary` (the engine's `convert_to` is only stable).
- **Text compares like `French_CI_AS`**: SQLite `NOCASE`, PostgreSQL a non-deterministic ICU collation
  (`sage_ci_as`: case-insensitive, accent-sensitive). Shadow columns stay binary, so a look-up through an index
  matches the exact value, as it does on SQL Server.
- **Sage-like triggers** stamp `cbModification` after every update (rounded to the minute, like a
  `smalldatetime`), so a write that forgets to is still seen as a change.

Wide rows on purpose: the adapter must pick its columns among many, never rely on ordinals.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Computed,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    insert,
    text,
)
from sqlalchemy.engine import Engine

# Free fields ("informations libres") of the demo company: user-typed names, spaces, accents, degree sign.
HEADER_FREE_FIELDS = {"Ref Chronopost": 21, "N° Dossier": 21, "Observation": 69, "Date échéance": None}
LINE_FREE_FIELDS = {"N° de série": 21, "Colis transporteur": 35}
SENTINEL = "1753-01-01 00:00:00"

# Text comparisons like SQL Server's French_CI_AS: case-insensitive, accent-sensitive.
PG_COLLATION = "sage_ci_as"
PG_SHADOW_FUNCTION = "sage_varbinary"
# The only indexes a real base has on the two document tables (Sage reference §8.5), by table.
REAL_INDEXES = {
    "F_DOCENTETE": {
        "IDO_TPIECE": ("DO_Domaine", "DO_Type", "cbDO_Piece"),
        "IDO_TIERS": ("cbDO_Tiers",),
        "IDO_DATE": ("DO_Date",),
        "IDO_DEPOT": ("DE_No",),
        "IDO_SOUCHE": ("DO_Souche",),
        "IDO_PIECEORIG": ("cbDO_PieceOrig",),
        "IDO_FACTUREFRS": ("cbDO_FactureFrs",),
    },
    "F_DOCLIGNE": {
        "IDL_PIECE": ("DO_Domaine", "DO_Type", "cbDO_Piece", "DL_Ligne"),
        "IDL_PIECECOM": ("cbDL_PieceBC",),
        "IDL_PIECELIVR": ("cbDL_PieceBL",),
        "IDL_PIECEPL": ("cbDL_PiecePL",),
        "IDL_PIECEDE": ("cbDL_PieceDE",),
        "IDL_REFLIG": ("cbDO_Ref",),
        "IDL_STOCK": ("DL_DateBL",),
        "IDL_NO": ("DL_No",),
        "IDL_ARTICLE": ("cbAR_Ref",),
        "IDL_DEPOT": ("DE_No",),
    },
}
UNIQUE_INDEXES = {"IDO_TPIECE", "IDL_NO"}


class _Dialect:
    """How this engine builds what SQL Server has natively: a CI text type and computed binary shadows."""

    def __init__(self, name: str):
        self.name = name

    def text_type(self, length: int | None) -> String:
        collation = {"sqlite": "NOCASE", "postgresql": PG_COLLATION}.get(self.name)
        return String(length, collation=collation)

    def shadow(self, name: str, source: str, length: int) -> Column:
        """`name` computed from the text column `source`, binary, as Sage's cb columns are."""
        if self.name == "postgresql":
            return Column(name, LargeBinary(length), Computed(f'{PG_SHADOW_FUNCTION}("{source}")', persisted=True))
        if self.name == "sqlite":
            return Column(name, LargeBinary(length), Computed(f'CAST("{source}" AS BLOB)'))
        raise ValueError(f"the demo GesCom is built on SQLite or PostgreSQL, not {self.name}")


def _money(name: str) -> Column:
    return Column(name, Numeric(24, 6), nullable=False, server_default="0")


def _small(name: str) -> Column:
    return Column(name, SmallInteger, nullable=False, server_default="0")


def _when(name: str) -> Column:
    return Column(name, DateTime, nullable=True)


def _text(name: str, length: int) -> Column:
    return Column(name, String(length), nullable=False, server_default="")


def _technical() -> list[Column]:
    return [
        Column("cbCreateur", String(4), nullable=False, server_default=""),
        Column("cbModification", DateTime),
        Column("cbReplication", Integer, server_default="0"),
        Column("cbFlag", SmallInteger, server_default="0"),
        Column("cbCreation", DateTime),
        Column("cbHash", LargeBinary(32)),
        Column("cbHashVersion", SmallInteger),
        Column("cbHashDate", DateTime),
        Column("cbHashOrder", Integer),
    ]


def _indexes(table: Table) -> None:
    for name, columns in REAL_INDEXES[table.name].items():
        Index(name, *(table.c[column] for column in columns), unique=name in UNIQUE_INDEXES)


def header_table(
    metadata: MetaData, free_fields: dict[str, int | None] = HEADER_FREE_FIELDS, piece_length: int = 13, dialect: str = "sqlite"
) -> Table:
    d = _Dialect(dialect)

    def _text(name: str, length: int) -> Column:
        return Column(name, d.text_type(length), nullable=False, server_default="")

    free = [(_text(name, length) if length else _when(name)) for name, length in free_fields.items()]
    columns = [
        _small("DO_Domaine"),
        _small("DO_Type"),
        _text("DO_Piece", piece_length),
        _when("DO_Date"),
        _text("DO_Ref", 17),
        _text("DO_Tiers", 17),
        _text("CO_No", 10),
        _small("DO_Period"),
        _small("DO_Devise"),
        _money("DO_Cours"),
        Column("DE_No", Integer, nullable=False, server_default="0"),
        Column("LI_No", Integer, nullable=False, server_default="0"),
        _text("CT_NumPayeur", 17),
        _small("DO_Expedit"),
        _small("DO_NbFacture"),
        _small("DO_BLFact"),
        _small("DO_TxEscompte"),
        _small("DO_Reliquat"),
        _small("DO_Imprim"),
        _text("CA_Num", 13),
        _text("DO_Coord01", 25),
        _text("DO_Coord02", 25),
        *free[:1],  # free fields sit among the standard columns in a real base
        _text("DO_Coord03", 25),
        _text("DO_Coord04", 25),
        _small("DO_Souche"),
        _when("DO_DateLivr"),
        _small("DO_Condition"),
        _small("DO_Tarif"),
        _small("DO_Colisage"),
        _small("DO_TypeColis"),
        _small("DO_Transaction"),
        _small("DO_Langue"),
        _small("DO_Ecart"),
        _small("DO_Regime"),
        _text("N_CatCompta", 4),
        _small("DO_Ventile"),
        _text("AB_No", 10),
        _when("DO_DebutAbo"),
        _when("DO_FinAbo"),
        _when("DO_DebutPeriod"),
        _when("DO_FinPeriod"),
        _text("CG_Num", 13),
        _small("DO_Statut"),
        _text("DO_Heure", 9),
        _text("CA_No", 10),
        _text("CO_NoCaissier", 10),
        _small("DO_Transfere"),
        _small("DO_Cloture"),
        _text("DO_NoWeb", 17),
        _small("DO_Attente"),
        _small("DO_Provenance"),
        _text("CA_NumIFRS", 13),
        _small("MR_No"),
        _small("DO_TypeFrais"),
        _money("DO_ValFrais"),
        _small("DO_TypeLigneFrais"),
        _small("DO_TypeFranco"),
        *free[1:3],
        _money("DO_ValFranco"),
        _small("DO_TypeLigneFranco"),
        _money("DO_Taxe1"),
        _small("DO_TypeTaux1"),
        _small("DO_TypeTaxe1"),
        _money("DO_Taxe2"),
        _small("DO_TypeTaux2"),
        _small("DO_TypeTaxe2"),
        _money("DO_Taxe3"),
        _small("DO_TypeTaux3"),
        _small("DO_TypeTaxe3"),
        _small("DO_MajCpta"),
        _text("DO_Motif", 69),
        _text("CT_NumCentrale", 17),
        _text("DO_Contact", 35),
        _small("DO_FactureElec"),
        _small("DO_TypeTransac"),
        _when("DO_DateLivrRealisee"),
        _when("DO_DateExpedition"),
        _text("DO_FactureFrs", 35),
        _text("DO_PieceOrig", piece_length),
        _small("DO_EStatut"),
        _small("DO_Valide"),
        _small("DO_DocType"),
        _small("DO_TypeCalcul"),
        _money("DO_TotalHT"),
        _money("DO_TotalHTNet"),
        _money("DO_TotalTTC"),
        _money("DO_NetAPayer"),
        _money("DO_MontantRegle"),
        _text("DO_RefExterne", 51),
        *free[3:],
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
        d.shadow("cbDO_Piece", "DO_Piece", piece_length + 1),
        d.shadow("cbDO_Tiers", "DO_Tiers", 18),
        d.shadow("cbDO_PieceOrig", "DO_PieceOrig", piece_length + 1),
        d.shadow("cbDO_FactureFrs", "DO_FactureFrs", 36),
        *_technical(),
    ]
    table = Table("F_DOCENTETE", metadata, *columns)
    _indexes(table)
    return table


def line_table(metadata: MetaData, free_fields: dict[str, int | None] = LINE_FREE_FIELDS, piece_length: int = 13, dialect: str = "sqlite") -> Table:
    d = _Dialect(dialect)

    def _text(name: str, length: int) -> Column:
        return Column(name, d.text_type(length), nullable=False, server_default="")

    free = [(_text(name, length) if length else _when(name)) for name, length in free_fields.items()]
    columns = [
        _small("DO_Domaine"),
        _small("DO_Type"),
        _text("CT_Num", 17),
        _text("DO_Piece", piece_length),
        _when("DL_DatePL"),
        Column("DL_Ligne", Integer, nullable=False, server_default="0"),
        _when("DO_Date"),
        _text("DL_PieceBC", piece_length),
        _text("DL_PieceBL", piece_length),
        _text("DL_PiecePL", piece_length),
        _text("DL_PieceDE", piece_length),
        _when("DL_DateBC"),
        _when("DL_DateBL"),
        _when("DL_DateDE"),
        _text("DO_Ref", 17),
        _small("DL_TNomencl"),
        _small("DL_TRemPied"),
        _small("DL_TRemExep"),
        _text("AR_Ref", 19),
        _text("DL_Design", 69),
        _money("DL_Qte"),
        _money("DL_QteBC"),
        _money("DL_QteBL"),
        _money("DL_QtePL"),
        _money("DL_QteDE"),
        _money("DL_PoidsNet"),
        _money("DL_PoidsBrut"),
        *free[:1],
        _money("DL_Remise01REM_Valeur"),
        _small("DL_Remise01REM_Type"),
        _money("DL_PrixUnitaire"),
        _money("DL_PUBC"),
        _money("DL_Taxe1"),
        _money("DL_PUTTC"),
        _money("DL_MontantHT"),
        _money("DL_MontantTTC"),
        _small("DL_MvtStock"),
        _text("AF_RefFourniss", 19),
        _text("EU_Enumere", 35),
        _money("EU_Qte"),
        _small("DL_TTC"),
        Column("DE_No", Integer, nullable=False, server_default="0"),
        _small("DL_NoRef"),
        _small("DL_TypePL"),
        _money("DL_PUDevise"),
        _money("DL_PUDeviseTTC"),
        _when("DO_DateLivr"),
        _text("CA_Num", 13),
        _money("DL_Frais"),
        _small("DL_Valorise"),
        _text("AR_RefCompose", 19),
        _small("DL_NonLivre"),
        _text("AC_RefClient", 19),
        _money("DL_MontantHTNet"),
        _text("DL_NoColis", 19),
        Column("DL_No", Integer, nullable=False, server_default="0"),
        *free[1:],
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
        d.shadow("cbDO_Piece", "DO_Piece", piece_length + 1),
        d.shadow("cbDL_PieceBC", "DL_PieceBC", piece_length + 1),
        d.shadow("cbDL_PieceBL", "DL_PieceBL", piece_length + 1),
        d.shadow("cbDL_PiecePL", "DL_PiecePL", piece_length + 1),
        d.shadow("cbDL_PieceDE", "DL_PieceDE", piece_length + 1),
        d.shadow("cbDO_Ref", "DO_Ref", 18),
        d.shadow("cbAR_Ref", "AR_Ref", 20),
        *_technical(),
    ]
    table = Table("F_DOCLIGNE", metadata, *columns)
    _indexes(table)
    return table


def expedition_table(metadata: MetaData) -> Table:
    return Table(
        "P_EXPEDITION",
        metadata,
        Column("cbIndice", SmallInteger, nullable=False),
        _text("E_Intitule", 35),
        _text("E_Mode", 3),
        _text("AR_Ref", 19),
        _small("E_TypeFrais"),
        _money("E_ValFrais"),
        _small("E_TypeLigneFrais"),
        _small("E_TypeFranco"),
        _money("E_ValFranco"),
        _small("E_TypeLigneFranco"),
        _small("E_TypeCalcul"),
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
    )


def syslibre_table(metadata: MetaData) -> Table:
    return Table(
        "cbSysLibre",
        metadata,
        Column("CB_File", String(128), nullable=False),
        Column("CB_Name", String(128), nullable=False),
        Column("CB_Pos", SmallInteger, nullable=False),
        Column("CB_Type", SmallInteger, nullable=False),
        Column("CB_Len", SmallInteger, nullable=False),
        Column("CB_Flag", SmallInteger, server_default="0"),
        Column("CB_Formule", String(255), server_default=""),
        Column("CB_Creator", String(4), server_default=""),
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
    )


def souche_table(metadata: MetaData) -> Table:
    """P_SOUCHEVENTE: the sales numbering series, one row per slot (`cbIndice` = DO_Souche + 1); unused slots
    have an empty S_Intitule, as in a real base."""
    return Table(
        "P_SOUCHEVENTE",
        metadata,
        _text("S_Intitule", 35),
        _small("S_Valide"),
        _text("JO_Num", 6),
        Column("cbIndice", SmallInteger, nullable=False),
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
    )


def current_piece_table(metadata: MetaData) -> Table:
    return Table(
        "F_DOCCURRENTPIECE",
        metadata,
        _small("DC_Domaine"),
        _small("DC_IdCol"),
        _small("DC_Souche"),
        _text("DC_Piece", 13),
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
    )


CARRIERS = [
    (1, "Retrait magasin", "RETRAIT"),
    (2, "Colissimo", "PORT-COLISSIMO"),
    (3, "Chronopost 13h", "PORT-CHRONO"),
    (4, "DPD Predict", "PORT-DPD"),
    (5, "UPS Standard", "PORT-UPS"),
]

# Sales numbering series (P_SOUCHEVENTE): DO_Souche, name. The demo's two shops number their orders in one each.
SOUCHES = [(0, "Web"), (1, "Web pro")]
SOUCHE_SLOTS = 10  # a real base has a fixed number of slots, the unused ones with an empty name


def _prepare(conn, dialect: str) -> None:
    """What the engine needs before the tables: PostgreSQL's CI collation and immutable shadow function."""
    if dialect != "postgresql":
        return
    conn.execute(text(f"CREATE COLLATION IF NOT EXISTS \"{PG_COLLATION}\" (provider = icu, locale = 'fr-FR-u-ks-level2', deterministic = false)"))
    conn.execute(
        text(
            f"CREATE OR REPLACE FUNCTION {PG_SHADOW_FUNCTION}(value text) RETURNS bytea "
            "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT convert_to(value, 'UTF8') $$"
        )
    )


def _triggers(conn, dialect: str) -> None:
    """Sage-like AFTER UPDATE triggers (TG_CBUPD_<table>): a row updated without a new cbModification gets
    GesCom's clock, rounded to the minute like a smalldatetime. A writer that stamps the row itself keeps its
    stamp (the demo's warehouse runs on a clock of its own)."""
    for table in ("F_DOCENTETE", "F_DOCLIGNE"):
        name = f"TG_CBUPD_{table}"
        if dialect == "sqlite":
            conn.execute(text(f'DROP TRIGGER IF EXISTS "{name}"'))
            conn.execute(
                text(
                    f'CREATE TRIGGER "{name}" AFTER UPDATE ON "{table}" FOR EACH ROW '
                    'WHEN NEW."cbModification" IS OLD."cbModification" '
                    f"BEGIN UPDATE \"{table}\" SET \"cbModification\" = strftime('%Y-%m-%d %H:%M:00.000000', 'now', 'localtime', '+30 seconds') "
                    'WHERE "cbMarq" = NEW."cbMarq"; END'
                )
            )
        elif dialect == "postgresql":
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION sage_cbupd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    'IF pg_trigger_depth() = 1 AND NEW."cbModification" IS NOT DISTINCT FROM OLD."cbModification" THEN '
                    "EXECUTE format('UPDATE %I.%I SET \"cbModification\" = date_trunc(''minute'', localtimestamp + interval ''30 seconds'') "
                    'WHERE "cbMarq" = $1\', TG_TABLE_SCHEMA, TG_TABLE_NAME) USING NEW."cbMarq"; '
                    "END IF; RETURN NULL; END $$"
                )
            )
            conn.execute(text(f'CREATE TRIGGER "{name}" AFTER UPDATE ON "{table}" FOR EACH ROW EXECUTE FUNCTION sage_cbupd()'))


def create_gescom(engine: Engine, *, header_free: dict | None = None, line_free: dict | None = None, piece_length: int = 13) -> MetaData:
    """Create the Sage tables (empty but for carriers and free-field definitions) and return their metadata."""
    header_free = HEADER_FREE_FIELDS if header_free is None else header_free
    line_free = LINE_FREE_FIELDS if line_free is None else line_free
    dialect = engine.dialect.name
    metadata = MetaData()
    header_table(metadata, header_free, piece_length, dialect)
    line_table(metadata, line_free, piece_length, dialect)
    expedition = expedition_table(metadata)
    souches = souche_table(metadata)
    syslibre = syslibre_table(metadata)
    current_piece_table(metadata)
    metadata.drop_all(engine)
    with engine.begin() as conn:
        _prepare(conn, dialect)
    metadata.create_all(engine)
    with engine.begin() as conn:
        _triggers(conn, dialect)
        conn.execute(insert(expedition), [{"cbIndice": i, "E_Intitule": name, "AR_Ref": sku, "E_Mode": ""} for i, name, sku in CARRIERS])
        names = dict(SOUCHES)
        conn.execute(
            insert(souches),
            [
                {"cbIndice": slot + 1, "S_Intitule": names.get(slot, ""), "S_Valide": int(slot in names), "JO_Num": "VTE" if slot in names else ""}
                for slot in range(SOUCHE_SLOTS)
            ],
        )
        definitions = []
        for table, fields in (("F_DOCENTETE", header_free), ("F_DOCLIGNE", line_free)):
            for position, (name, length) in enumerate(fields.items(), start=1):
                definitions.append({"CB_File": table, "CB_Name": name, "CB_Pos": position, "CB_Type": 9 if length else 14, "CB_Len": length or 8})
        if definitions:
            conn.execute(insert(syslibre), definitions)
    return metadata
