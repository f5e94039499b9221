"""The study of the chapter's tables: the book's tables as data, sweeps and their records, the reports
and the SGD and CNN studies made of them. Used by reproduce.py, make_docs.py, figures.py, predict.py
(study.tables) and benchmarks/; no listing imports it.

- ``study.tables``: the book's tables and listings as data, and the CNN variants of Chapter 1's claims.
- ``study.variants``: Listing 1.4.1's model with one of those changes.
- ``study.train``: training one configuration as its listing does, in float32 or bfloat16 (imports Keras).
- ``study.records``: reproduce.py's records (results/records*.jsonl), read and appended.
- ``study.report``, ``study.results``, ``study.stats``: the tables and RESULTS.md made of them.
- ``study.sgd_study``, ``study.cnn_study``: the budget study and what the CNN section claims, measured.
"""
