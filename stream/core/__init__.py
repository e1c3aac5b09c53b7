"""The pipeline core (the pipeline layer, with stream.sources and stream.sinks): the Kafka-free batch
processor and its batch loop, the ingest loop, and the Kafka I/O helpers.
"""
