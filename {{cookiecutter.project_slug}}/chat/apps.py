from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The signal handlers that keep the WebSocket side's view of accounts and rooms in
        # step with the database (identity records, the room mirror, open sockets).
        from chat import accounts, mirrors, rooms  # noqa: F401

        post_migrate.connect(mirrors.rebuild_after_migrate, sender=self)
