"""What Django's error pages and error reports may show of the settings.

Django hides settings whose names look secret (``SECRET_KEY``, ``*_PASSWORD``, ``*_TOKEN``);
this project's connection strings carry passwords in names that do not (``REDIS_URL``,
``CELERY_BROKER_URL``, ``CACHES["default"]["LOCATION"]``, the channel layer's ``hosts``). With
``DEBUG`` on, the error page lists every setting: these are hidden too.
"""

import re

from django.views.debug import SafeExceptionReporterFilter


class ExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|LOCATION|HOSTS", flags=re.I
    )
