"""What the tools stand on beyond ``ch1``: the book's tables as data, sweeps and their records and
reports, the studies, digit preparation and the drawing page's server. No listing imports it.

- ``tools.tables``: the book's tables and listings as data, and the CNN variants of Chapter 1's claims.
- ``tools.train``: training one configuration as its listing does, and the speed options (imports Keras).
- ``tools.records``, ``tools.report``: reproduce.py's records, and the tables and RESULTS.md made of them.
- ``tools.digits``: a photo or drawing prepared as MNIST would hold it.
- ``tools.serve``: the drawing page's server (imports Keras when it serves).
"""
