"""Probes and metrics for load balancers, orchestrators and Prometheus.

``/healthz``: the process answers (liveness; restart it if not). ``/readyz``: its
dependencies answer too (readiness; send it traffic only then). ``/metrics``: Prometheus
text format. None of them needs a login, and none is cached.
"""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ops.pools import observe_pool
from ops.readiness import readiness


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok", "role": settings.PROCESS_ROLE})


@never_cache
def readyz(request):
    checks = readiness(settings.PROCESS_ROLE, settings.READINESS_TIMEOUT)
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {
            "status": "ok" if ready else "unavailable",
            "role": settings.PROCESS_ROLE,
            "checks": checks,
        },
        status=200 if ready else 503,
    )


@never_cache
def metrics(request):
    observe_pool()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
