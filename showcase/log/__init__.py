"""Durable event logs: SQLite on one machine (``sqlite``), Redis Streams shared by several
nodes (``redis_streams``); ``base`` holds the contract both keep. Depends on the core only."""
