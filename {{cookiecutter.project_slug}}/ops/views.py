"""Probes and metrics for load balancers, orchestrators and Prometheus; the staff panel.

``/healthz``: the process answers (liveness; restart it if not). ``/readyz``: its
dependencies answer too (readiness; send it traffic only then), from an answer at most
``READINESS_CACHE_SECONDS`` old (ops/readiness.py). ``/metrics``: Prometheus text format,
only to the addresses in ``METRICS_ALLOWED_IPS`` or with ``Authorization: Bearer
<METRICS_TOKEN>``; anyone else gets a 404, as if there were nothing there. The probes need
no login; no answer may be cached by a proxy. ``/ops/panel/``: the live system panel, for
staff users (``ops.live``).
"""

import ipaddress
import secrets

from django.conf import settings
from django.contrib.auth.decorators import user_passes_test
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ops import live
from ops.pool_metrics import observe_database_pool
from ops.readiness import readiness


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok", "role": settings.PROCESS_ROLE})


@never_cache
def readyz(request):
    checks = readiness(
        settings.PROCESS_ROLE, settings.READINESS_TIMEOUT, settings.READINESS_CACHE_SECONDS
    )
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {
            "status": "ok" if ready else "unavailable",
            "role": settings.PROCESS_ROLE,
            "checks": checks,
        },
        status=200 if ready else 503,
    )


def may_scrape(request) -> bool:
    """The operator's allowlist (addresses or networks), or the bearer token."""
    if settings.METRICS_TOKEN:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), settings.METRICS_TOKEN.encode()
        ):
            return True
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in network for network in settings.METRICS_ALLOWED_IPS)


@never_cache
def metrics(request):
    if not may_scrape(request):
        raise Http404
    observe_database_pool()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


staff_only = user_passes_test(lambda user: user.is_active and user.is_staff, login_url="login")


@staff_only
def panel(request):
    """The live system panel: the claim, as it happens (``ops.live``)."""
    return render(request, "ops/panel.html")


@never_cache
@staff_only
def panel_data(request):
    return JsonResponse(live.snapshot())
