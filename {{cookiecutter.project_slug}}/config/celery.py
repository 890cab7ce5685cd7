"""The Celery application: the persistence worker, and the publisher the ASGI process uses.

Run the worker with ``celery -A config.celery worker``. Its prefork children each own one
bounded connection pool (``config.pool``), kept for the child's whole life
(``chat.tasks`` hands connections back after each task and closes the pool at exit).
The ASGI process imports this module too, to publish; it never loads the tasks.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("PROCESS_ROLE", "worker")

from celery import Celery

app = Celery("{{ cookiecutter.project_slug }}")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes Django's connection pool after every task in prefork
# children (celery/celery#10554), so each batch would pay for a fresh connection. Past this
# many tasks it still recycles the pool, which is harmless; until then the pool lives on.
app.conf.CELERY_DB_REUSE_MAX = 1000
app.autodiscover_tasks()
# The worker hands over again accepted messages the broker lost (chat/sweep.py).
app.steps["worker"].add("chat.sweep:PendingSweep")
