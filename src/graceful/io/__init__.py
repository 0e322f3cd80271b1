"""Files: atomic output writes (core), and prediction and embedding readers (``io`` extra).

:mod:`graceful.io.atomic` needs nothing optional; :mod:`graceful.io.predictions` and
:mod:`graceful.io.embeddings` read CSV, Parquet, JSON Lines and NumPy files with pyarrow
(``pip install 'graceful[io]'``).
"""
