from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"

    def ready(self):
        from ops import checks  # noqa: F401  (registers the connection budget check)
