"""A generated, Sage-shaped GesCom for the demo, the tests and the benchmarks.

`schema` creates F_DOCENTETE / F_DOCLIGNE / P_EXPEDITION / P_SOUCHEVENTE / cbSysLibre / F_DOCCURRENTPIECE with
Sage's real column names (free fields with spaces and accents among them); `warehouse` transforms documents the
way Sage does, each numbering series (souche) with its own numbers; `generator` fills a base with the web orders
of two shops at every stage; `shops` says which souche is which shop, and the store's shops that match.
"""
