"""The news.raw message and what is made from it without a broker or a database (the messages layer).

* :mod:`stream.messages.raw_message` -- the message contract: parsing, validation, stable ids;
* :mod:`stream.messages.text` -- the model's input text;
* :mod:`stream.messages.replay` -- reading archives (JSONL, CSV, Parquet) into messages;
* :mod:`stream.messages.novelty` -- story novelty (near-duplicates are one story), in memory.
"""
