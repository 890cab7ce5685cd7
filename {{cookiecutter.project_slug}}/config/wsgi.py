"""WSGI entry point, for HTTP-only deployments (admin tools, history API behind gunicorn)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("PROCESS_ROLE", "web")

application = get_wsgi_application()
