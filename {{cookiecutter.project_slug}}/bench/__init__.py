"""The benchmark: ``python -m bench`` (or ``make bench``; ``--quick`` for a short run).

It measures the claim this project is built on, with real processes (an ASGI server, a
Celery worker, PostgreSQL, Redis) and real WebSocket clients, next to the designs it
replaces. See docs/benchmark.md for what each scenario measures and the latest results.

``bench.peers`` holds those other designs. They are here to be measured, not copied.
"""
