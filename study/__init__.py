"""The study of the chapter's tables: the book's tables as data (study.tables), the sweeps' training
and records, and the reports and studies made of them (each module says what it holds). Used by
reproduce.py, make_docs.py, figures.py, predict.py (study.tables) and benchmarks/; no listing imports it.
"""
