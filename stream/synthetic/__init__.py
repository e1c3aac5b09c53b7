"""Synthetic news days for the demo, the alert-quality figures, the benchmarks and the tests:
:mod:`stream.synthetic.generate` (the logic) and ``templates.json`` (its word lists, headline
templates and mixes)."""
