from django.db import migrations, models


def number_existing_messages(apps, schema_editor):
    """Messages stored before offsets existed get theirs, per room, in the order the history
    showed them; the Redis counters are seeded from these after ``migrate``."""
    Message = apps.get_model("chat", "Message")
    rooms = Message.objects.values_list("room", flat=True).distinct()
    for room in rooms.iterator():
        ordered = Message.objects.filter(room=room).order_by("sent_at", "id").only("pk")
        batch = []
        for number, message in enumerate(ordered.iterator(), 1):
            message.offset = number
            batch.append(message)
        Message.objects.bulk_update(batch, ["offset"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0002_rooms"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="offset",
            field=models.BigIntegerField(
                help_text="Its place in the room, from Redis at fan-out (chat/offsets.py); none "
                "for messages accepted before offsets existed.",
                null=True,
            ),
        ),
        migrations.RunPython(number_existing_messages, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["room", "offset"], name="chat_message_room_offset"),
        ),
    ]
