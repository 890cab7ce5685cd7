"""The Celery worker's metrics endpoint: its prefork children's counts, summed.

The persistence task runs in prefork children, each with its own memory. With
``WORKER_METRICS_PORT`` set, config/settings.py points prometheus-client's multiprocess
mode at a fresh directory before anything imports it: every child then counts in its own
file there, and the worker's main process serves the sum over HTTP on that port
(``http://<host>:<port>/metrics``). Without the port, nothing here runs.
"""

import logging
import os
import shutil
from pathlib import Path

from celery import signals
from django.conf import settings

logger = logging.getLogger(__name__)


@signals.worker_ready.connect
def serve_metrics(**kwargs):
    if not settings.WORKER_METRICS_PORT:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    try:
        start_http_server(settings.WORKER_METRICS_PORT, registry=registry)
    except OSError as exc:
        # Metrics are worth a log line, not the persistence worker.
        logger.error("Worker metrics not served on port %s: %s", settings.WORKER_METRICS_PORT, exc)
        return
    logger.info("Worker metrics on http://0.0.0.0:%s/metrics", settings.WORKER_METRICS_PORT)


@signals.worker_process_shutdown.connect
def forget_child(pid=None, **kwargs):
    """A child's gauges (its pool) stop counting when it exits; its counters stay."""
    if settings.WORKER_METRICS_PORT:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@signals.worker_shutdown.connect
def remove_metrics_directory(**kwargs):
    """Remove the directory config/settings.py made (one someone else configured stays)."""
    directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    if settings.WORKER_METRICS_PORT and directory.name.startswith(
        f"{settings.PROJECT_SLUG}-metrics-"
    ):
        shutil.rmtree(directory, ignore_errors=True)
