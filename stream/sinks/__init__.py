"""Where ingested records go: news.raw through the Kafka producer (``stream.sinks.kafka``), or
scored and stored in this process by the worker's own batch step (``stream.sinks.store``)."""
