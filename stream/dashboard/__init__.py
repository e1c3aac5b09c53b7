"""``finsent dashboard``: the live web page and its JSON API on 127.0.0.1, reading as the analyst role.

* :mod:`stream.dashboard.params` -- request parameters, validated (pure);
* :mod:`storage.dashboard` -- the bounded, parameterized SQL;
* :mod:`stream.dashboard.server` -- the Starlette app (pages, ``/api/``, live alerts by SSE);
* :mod:`stream.dashboard.serve` -- uvicorn on 127.0.0.1, in the foreground or in a thread;
* :mod:`stream.dashboard.background` -- a background dashboard for ``finsent demo`` (pid file under
  the state dir; ``finsent dashboard --stop`` and ``finsent down`` stop it).

The command itself is in :mod:`stream.cli`, with the streaming side's other commands.
"""

DEFAULT_PORT = 18080
HOST = "127.0.0.1"
