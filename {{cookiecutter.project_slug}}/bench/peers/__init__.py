"""What not to do: the designs this project replaces, kept for the benchmark to measure.

(a) ``WebsocketConsumer`` with the ORM in the consumer, (b) ``AsyncWebsocketConsumer`` with
``database_sync_to_async(thread_sensitive=False)``. Both authenticate with Channels'
``AuthMiddlewareStack`` (a user query per handshake) and store each message before fanning
it out, as most tutorials show. They run with Django's usual persistent connections
(``bench.peers.settings``), not the project's bounded pool.

Never route real traffic here. The import-linter contract does not cover this package:
touching the database from a consumer is the point of it.
"""
