"""A generated, Sage-shaped GesCom for the demo, the tests and the benchmarks.

`schema` creates F_DOCENTETE / F_DOCLIGNE / P_EXPEDITION / cbSysLibre / F_DOCCURRENTPIECE with Sage's real
column names (free fields with spaces and accents among them); `warehouse` transforms documents the way
Sage does; `generator` fills a base with web orders at every stage.
"""
