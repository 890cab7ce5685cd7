"""The Content-Security-Policy header, on every response.

The demo's pages are written to satisfy a strict policy: scripts and styles come from this
site's static files only, nothing inline (the room page hands its settings to the script in
``data-`` attributes, not in a script block). An injected ``<script>`` or ``onerror=`` then
does not run even if some bug let it into the page. ``tests/test_browser.py`` drives the
pages in Chromium and fails on any violation the browser reports.

Django 6.0 ships a middleware for this (``SECURE_CSP``); this project also runs on Django
5.2, and a fixed policy needs no more than the header.
"""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
