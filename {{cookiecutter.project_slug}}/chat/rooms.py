"""Private rooms on the HTTP side: the database writes, and the mirror kept in step.

PostgreSQL holds the truth (``chat.models``). The API (``chat.api``) and the admin change
rooms and memberships through the ORM; whatever made the change, the model signals below
bring it here once its transaction has committed, and:

1. the room's entry in the WebSocket side's mirror (``chat.access``) is rewritten from the
   database, under the room's row lock, so that two changes racing each other reach Redis
   in the order they reached PostgreSQL;
2. the sockets concerned are told (``chat.groups``): a removed member's sockets to the room
   close with 4403 within moments, on every server process; when a room becomes private,
   every socket in it checks the mirror again.

``rebuild_mirror`` builds the whole mirror from the database, with the rooms table locked
against writes meanwhile (a write that waits for it then lands in the new mirror). It runs
after every ``migrate``, on ``manage.py rooms_mirror``, and in the worker when the mirror is
found missing (``chat.sweep``).
"""

from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chat import access, groups
from chat.models import Membership, Message, Room


class RoomExists(Exception):
    pass


def create(name: str, owner, private: bool = True) -> Room:
    """A new room owned (and, if private, joined) by ``owner``; RoomExists if the name is
    taken, also by a public room that already has messages (its history would otherwise
    change hands)."""
    try:
        with transaction.atomic():
            if Message.objects.filter(room=name).exists():
                raise RoomExists(name)
            room = Room.objects.create(name=name, owner=owner, private=private)
            Membership.objects.create(room=room, user=owner)
    except IntegrityError:  # the same name, created at the same moment
        raise RoomExists(name) from None
    return room


def may_read(name: str, user) -> bool:
    """May ``user`` read ``name`` (history, room page)? One query: no private room of that
    name leaves them out."""
    private = Room.objects.filter(name=name, private=True)
    return not private.exclude(owner=user).exclude(memberships__user=user).exists()


def mirror_entry(room: Room | None) -> list[int] | None:
    """What the mirror holds for a room: its members' ids (the owner's included), or None
    for a public room."""
    if room is None or not room.private:
        return None
    members = {membership.user_id for membership in room.memberships.all()}
    return sorted(members | ({room.owner_id} if room.owner_id else set()))


def refresh(name: str) -> None:
    """Rewrite ``name``'s mirror entry from the database. The row lock orders concurrent
    refreshes of one room, and waits for a rebuild in progress."""
    with transaction.atomic():
        room = Room.objects.select_for_update().filter(name=name).first()
        access.publish(name, mirror_entry(room))


def rebuild_mirror() -> int:
    """Install a mirror built from the whole database; the number of private rooms in it."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Plain reads go on; writes to rooms, and refreshes (SELECT ... FOR UPDATE),
            # wait until this transaction ends, and then write to the new mirror.
            cursor.execute(f"LOCK TABLE {Room._meta.db_table} IN EXCLUSIVE MODE")
        rooms = Room.objects.filter(private=True).prefetch_related("memberships")
        private = {room.name: mirror_entry(room) or [] for room in rooms}
        access.install(private)
    return len(private)


# --- Signals: whatever changed the rows, the mirror and the sockets follow -----------------


@receiver(post_save, sender=Room)
def room_saved(sender, instance, **kwargs):
    name = instance.name

    def follow():
        refresh(name)
        groups.tell(groups.room(name), groups.access_changed())

    transaction.on_commit(follow)


@receiver(post_delete, sender=Room)
def room_deleted(sender, instance, **kwargs):
    name = instance.name
    transaction.on_commit(lambda: refresh(name))


@receiver(post_save, sender=Membership)
def member_added(sender, instance, **kwargs):
    name = instance.room.name
    transaction.on_commit(lambda: refresh(name))


@receiver(post_delete, sender=Membership)
def member_removed(sender, instance, **kwargs):
    name, user_id = instance.room.name, instance.user_id

    def follow():
        refresh(name)
        groups.tell(groups.user(user_id), groups.access_revoked(name))

    transaction.on_commit(follow)
