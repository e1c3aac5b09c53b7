"""The base layer of finsent: settings (``config``: sources and checks; ``settings``: the fields,
loaded on first use), connection strings (``dsn``), the redactor (``redact``), errors, the label
vocabulary, CLI time parsing, the CLI table printer.

Every other package (model, storage, alerts, deploy and the rest of stream)
may import from here; the modules here import nothing else of finsent
(tests/unit/test_layering.py checks that).
"""
