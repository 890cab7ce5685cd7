"""The admin: rooms and their members, API keys.

Changes made here go through the same model signals as the API's (``chat.rooms``,
``chat.accounts``): the room mirror follows, removed members' sockets close with 4403, a
deleted API key's sockets with 4401.
"""

from django.contrib import admin

from chat.models import ApiKey, Membership, Room


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "private", "owner", "created_at"]
    list_filter = ["private"]
    search_fields = ["name", "owner__username"]
    autocomplete_fields = ["owner"]
    inlines = [MembershipInline]

    def has_delete_permission(self, request, obj=None):
        # A room without a row is public: deleting a private room would open its history to
        # everyone. Make it public on purpose (untick "private"), or keep it.
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made by ``manage.py apikey`` (which shows the key once); here they are
    listed, and deleted to revoke them."""

    list_display = ["prefix", "user", "created_at"]
    search_fields = ["prefix", "user__username"]
    readonly_fields = ["user", "prefix", "digest", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
