"""The Celery worker's metrics endpoint: its prefork children's counts, summed.

The persistence task runs in prefork children, each with its own memory. With
``WORKER_METRICS_PORT`` set, prometheus-client's multiprocess mode is pointed at a fresh
directory before anything imports it (``prepare``): every child then counts in its own file
there, and the worker's main process serves the sum over HTTP on that port
(``http://<host>:<port>/metrics``). ``config/celery.py`` calls each function here at its
moment in the worker's life; without the port, none of them does anything.
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


def directory_prefix() -> str:
    return f"{settings.PROJECT_SLUG}-metrics-"


def prepare() -> None:
    """Before prometheus-client is imported: where the children will count."""
    if settings.WORKER_METRICS_PORT and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=directory_prefix())


def serve() -> None:
    """In the worker's main process, once it is ready: the sum of the children's counts."""
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


def forget_child(pid: int) -> None:
    """A child's gauges (its pool) stop counting when it exits; its counters stay."""
    if settings.WORKER_METRICS_PORT:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def remove_directory() -> None:
    """Remove the directory ``prepare`` made (one someone else configured stays)."""
    directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    if settings.WORKER_METRICS_PORT and directory.name.startswith(directory_prefix()):
        shutil.rmtree(directory, ignore_errors=True)
