"""finsent: negative-news spike alerts.

* :mod:`alerts.detector` -- the pure detection rules over per-minute counts
  (sliding event-time windows, volume-adjusted EWMA baseline, calibrated z,
  cooldown); no I/O.
* :mod:`alerts.service` -- ``AlertService.observe()``: the watermark, windows
  evaluated from ``sentiment_minute``, alerts stored once in ``alerts``.
* :mod:`alerts.notifier` -- ``Notifier``: delivery through apprise with
  retries and backoff, never twice across restarts (bar the documented
  milliseconds between a target's acceptance and the commit).
* :mod:`alerts.cli` -- ``finsent alerts list | test | notify``.
* :mod:`alerts.quality` -- detection quality on generated days
  (``python -m alerts.quality --days 50``).
"""
