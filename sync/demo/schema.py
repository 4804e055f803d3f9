"""Sage 100c-shaped tables (v3.10 model column set, free fields interleaved), created on SQLite or PostgreSQL.

Wide rows on purpose: the adapter must pick its columns among many, never rely on ordinals.
"""
from __future__ import annotations

from sqlalchemy import (
    Column,
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
)
from sqlalchemy.engine import Engine

# Free fields ("informations libres") of the demo company: user-typed names, spaces, accents, degree sign.
HEADER_FREE_FIELDS = {"Ref Chronopost": 21, "N° Dossier": 21, "Observation": 69, "Date échéance": None}
LINE_FREE_FIELDS = {"N° de série": 21, "Colis transporteur": 35}
SENTINEL = "1753-01-01 00:00:00"


def _money(name: str) -> Column:
    return Column(name, Numeric(24, 6), nullable=False, server_default="0")


def _small(name: str) -> Column:
    return Column(name, SmallInteger, nullable=False, server_default="0")


def _text(name: str, length: int) -> Column:
    return Column(name, String(length), nullable=False, server_default="")


def _when(name: str) -> Column:
    return Column(name, DateTime, nullable=True)


def header_table(metadata: MetaData, free_fields: dict[str, int | None] = HEADER_FREE_FIELDS, piece_length: int = 13) -> Table:
    free = [(_text(name, length) if length else _when(name)) for name, length in free_fields.items()]
    columns = [
        _small("DO_Domaine"), _small("DO_Type"), _text("DO_Piece", piece_length), _when("DO_Date"), _text("DO_Ref", 17),
        _text("DO_Tiers", 17), _text("CO_No", 10), _small("DO_Period"), _small("DO_Devise"), _money("DO_Cours"),
        Column("DE_No", Integer, nullable=False, server_default="0"), Column("LI_No", Integer, nullable=False, server_default="0"),
        _text("CT_NumPayeur", 17), _small("DO_Expedit"), _small("DO_NbFacture"), _small("DO_BLFact"), _small("DO_TxEscompte"),
        _small("DO_Reliquat"), _small("DO_Imprim"), _text("CA_Num", 13), _text("DO_Coord01", 25), _text("DO_Coord02", 25),
        *free[:1],  # free fields sit among the standard columns in a real base
        _text("DO_Coord03", 25), _text("DO_Coord04", 25), _text("DO_Souche", 4), _when("DO_DateLivr"), _small("DO_Condition"),
        _small("DO_Tarif"), _small("DO_Colisage"), _small("DO_TypeColis"), _small("DO_Transaction"), _small("DO_Langue"),
        _small("DO_Ecart"), _small("DO_Regime"), _text("N_CatCompta", 4), _small("DO_Ventile"), _text("AB_No", 10),
        _when("DO_DebutAbo"), _when("DO_FinAbo"), _when("DO_DebutPeriod"), _when("DO_FinPeriod"), _text("CG_Num", 13),
        _small("DO_Statut"), _text("DO_Heure", 9), _text("CA_No", 10), _text("CO_NoCaissier", 10), _small("DO_Transfere"),
        _small("DO_Cloture"), _text("DO_NoWeb", 17), _small("DO_Attente"), _small("DO_Provenance"), _text("CA_NumIFRS", 13),
        _small("MR_No"), _small("DO_TypeFrais"), _money("DO_ValFrais"), _small("DO_TypeLigneFrais"), _small("DO_TypeFranco"),
        *free[1:3],
        _money("DO_ValFranco"), _small("DO_TypeLigneFranco"), _money("DO_Taxe1"), _small("DO_TypeTaux1"), _small("DO_TypeTaxe1"),
        _money("DO_Taxe2"), _small("DO_TypeTaux2"), _small("DO_TypeTaxe2"), _money("DO_Taxe3"), _small("DO_TypeTaux3"),
        _small("DO_TypeTaxe3"), _small("DO_MajCpta"), _text("DO_Motif", 69), _text("CT_NumCentrale", 17), _text("DO_Contact", 35),
        _small("DO_FactureElec"), _small("DO_TypeTransac"), _when("DO_DateLivrRealisee"), _when("DO_DateExpedition"),
        _text("DO_FactureFrs", 35), _text("DO_PieceOrig", piece_length), _small("DO_EStatut"), _small("DO_Valide"),
        _small("DO_DocType"), _small("DO_TypeCalcul"), _money("DO_TotalHT"), _money("DO_TotalHTNet"), _money("DO_TotalTTC"),
        _money("DO_NetAPayer"), _money("DO_MontantRegle"), _text("DO_RefExterne", 51),
        *free[3:],
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
        Column("cbDO_Piece", LargeBinary(14)), Column("cbDO_Tiers", LargeBinary(18)),
        _text("cbCreateur", 4), Column("cbModification", DateTime), Column("cbReplication", Integer, server_default="0"),
        Column("cbFlag", SmallInteger, server_default="0"), Column("cbCreation", DateTime),
        Column("cbHash", LargeBinary(32)), Column("cbHashVersion", SmallInteger), Column("cbHashDate", DateTime), Column("cbHashOrder", Integer),
    ]
    table = Table("F_DOCENTETE", metadata, *columns)
    Index("IDO_TPIECE", table.c.DO_Domaine, table.c.DO_Type, table.c.DO_Piece, unique=True)
    Index("IDO_NOWEB", table.c.DO_NoWeb)
    Index("IDO_REF", table.c.DO_Ref)
    Index("IDO_MODIF", table.c.cbModification)
    return table


def line_table(metadata: MetaData, free_fields: dict[str, int | None] = LINE_FREE_FIELDS, piece_length: int = 13) -> Table:
    free = [(_text(name, length) if length else _when(name)) for name, length in free_fields.items()]
    columns = [
        _small("DO_Domaine"), _small("DO_Type"), _text("CT_Num", 17), _text("DO_Piece", piece_length), _when("DL_DatePL"),
        Column("DL_Ligne", Integer, nullable=False, server_default="0"), _when("DO_Date"), _text("DL_PieceBC", piece_length),
        _text("DL_PieceBL", piece_length), _text("DL_PiecePL", piece_length), _text("DL_PieceDE", piece_length), _when("DL_DateBC"),
        _when("DL_DateBL"), _when("DL_DateDE"), _text("DO_Ref", 17), _small("DL_TNomencl"), _small("DL_TRemPied"),
        _small("DL_TRemExep"), _text("AR_Ref", 19), _text("DL_Design", 69), _money("DL_Qte"), _money("DL_QteBC"),
        _money("DL_QteBL"), _money("DL_QtePL"), _money("DL_QteDE"), _money("DL_PoidsNet"), _money("DL_PoidsBrut"),
        *free[:1],
        _money("DL_Remise01REM_Valeur"), _small("DL_Remise01REM_Type"), _money("DL_PrixUnitaire"), _money("DL_PUBC"),
        _money("DL_Taxe1"), _money("DL_PUTTC"), _money("DL_MontantHT"), _money("DL_MontantTTC"), _small("DL_MvtStock"),
        _text("AF_RefFourniss", 19), _text("EU_Enumere", 35), _money("EU_Qte"), _small("DL_TTC"),
        Column("DE_No", Integer, nullable=False, server_default="0"), _small("DL_NoRef"), _small("DL_TypePL"),
        _money("DL_PUDevise"), _money("DL_PUDeviseTTC"), _when("DO_DateLivr"), _text("CA_Num", 13), _money("DL_Frais"),
        _small("DL_Valorise"), _text("AR_RefCompose", 19), _small("DL_NonLivre"), _text("AC_RefClient", 19),
        _money("DL_MontantHTNet"), _text("DL_NoColis", 19), Column("DL_No", Integer, nullable=False, server_default="0"),
        *free[1:],
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
        Column("cbDO_Piece", LargeBinary(14)), Column("cbDL_PieceBC", LargeBinary(14)), Column("cbAR_Ref", LargeBinary(20)),
        _text("cbCreateur", 4), Column("cbModification", DateTime), Column("cbReplication", Integer, server_default="0"),
        Column("cbFlag", SmallInteger, server_default="0"), Column("cbCreation", DateTime),
        Column("cbHash", LargeBinary(32)), Column("cbHashVersion", SmallInteger), Column("cbHashDate", DateTime), Column("cbHashOrder", Integer),
    ]
    table = Table("F_DOCLIGNE", metadata, *columns)
    Index("IDL_PIECE", table.c.DO_Domaine, table.c.DO_Type, table.c.DO_Piece, table.c.DL_Ligne)
    Index("IDL_PIECECOM", table.c.DL_PieceBC)
    Index("IDL_PIECELIVR", table.c.DL_PieceBL)
    Index("IDL_PIECEPL", table.c.DL_PiecePL)
    Index("IDL_MODIF", table.c.cbModification)
    return table


def expedition_table(metadata: MetaData) -> Table:
    return Table(
        "P_EXPEDITION", metadata,
        Column("cbIndice", SmallInteger, nullable=False), _text("E_Intitule", 35), _text("E_Mode", 3), _text("AR_Ref", 19),
        _small("E_TypeFrais"), _money("E_ValFrais"), _small("E_TypeLigneFrais"), _small("E_TypeFranco"), _money("E_ValFranco"),
        _small("E_TypeLigneFranco"), _small("E_TypeCalcul"), Column("cbMarq", Integer, primary_key=True, autoincrement=True),
    )


def syslibre_table(metadata: MetaData) -> Table:
    return Table(
        "cbSysLibre", metadata,
        Column("CB_File", String(128), nullable=False), Column("CB_Name", String(128), nullable=False),
        Column("CB_Pos", SmallInteger, nullable=False), Column("CB_Type", SmallInteger, nullable=False),
        Column("CB_Len", SmallInteger, nullable=False), Column("CB_Flag", SmallInteger, server_default="0"),
        Column("CB_Formule", String(255), server_default=""), Column("CB_Creator", String(4), server_default=""),
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
    )


def current_piece_table(metadata: MetaData) -> Table:
    return Table(
        "F_DOCCURRENTPIECE", metadata,
        _small("DC_Domaine"), _small("DC_IdCol"), _small("DC_Souche"), _text("DC_Piece", 13),
        Column("cbMarq", Integer, primary_key=True, autoincrement=True),
    )


CARRIERS = [
    (1, "Retrait magasin", "RETRAIT"),
    (2, "Colissimo", "PORT-COLISSIMO"),
    (3, "Chronopost 13h", "PORT-CHRONO"),
    (4, "DPD Predict", "PORT-DPD"),
    (5, "UPS Standard", "PORT-UPS"),
]


def create_gescom(engine: Engine, *, header_free: dict | None = None, line_free: dict | None = None, piece_length: int = 13) -> MetaData:
    """Create the Sage tables (empty but for carriers and free-field definitions) and return their metadata."""
    header_free = HEADER_FREE_FIELDS if header_free is None else header_free
    line_free = LINE_FREE_FIELDS if line_free is None else line_free
    metadata = MetaData()
    header_table(metadata, header_free, piece_length)
    line_table(metadata, line_free, piece_length)
    expedition = expedition_table(metadata)
    syslibre = syslibre_table(metadata)
    current_piece_table(metadata)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(expedition), [{"cbIndice": i, "E_Intitule": name, "AR_Ref": sku, "E_Mode": ""} for i, name, sku in CARRIERS])
        definitions = []
        for table, fields in (("F_DOCENTETE", header_free), ("F_DOCLIGNE", line_free)):
            for position, (name, length) in enumerate(fields.items(), start=1):
                definitions.append({"CB_File": table, "CB_Name": name, "CB_Pos": position, "CB_Type": 9 if length else 14, "CB_Len": length or 8})
        if definitions:
            conn.execute(insert(syslibre), definitions)
    return metadata
