"""Helpers shared by the tests and the benchmark scripts (never imported by finsent itself).

* :mod:`tests.support.tiny_model` -- tiny random models and checkpoints (same code paths as the real one);
* :mod:`tests.support.alert_streams` -- generated messages stored with ground-truth scores and passed
  through the real ``AlertService``; :class:`~tests.support.alert_streams.Receiver`, an apprise
  ``json://`` endpoint;
* :mod:`tests.support.sample_rows` -- deterministic scored-article streams for storage tests;
* :mod:`tests.support.fakes` -- stand-ins for the batch step's engine, writer and alert service.
"""
