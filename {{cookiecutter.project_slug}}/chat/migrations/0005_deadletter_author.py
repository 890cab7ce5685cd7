from django.db import migrations, models
from django.db.models.functions import Coalesce

# Dead letters are keyed like messages, by (author, id): the author comes from the record.
NAME_AUTHORS = """
UPDATE chat_deadletter SET author_id = (record ->> 'author_id')::bigint
WHERE jsonb_typeof(record) = 'object' AND record ->> 'author_id' ~ '^[0-9]{1,18}$'
"""


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_message_author_id_unique"),
    ]

    operations = [
        migrations.AddField(
            model_name="deadletter",
            name="author_id",
            field=models.BigIntegerField(
                help_text="The record's author, if it names one (the user may be gone).",
                null=True,
            ),
        ),
        migrations.RunSQL(NAME_AUTHORS, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="deadletter",
            name="message_id",
            field=models.UUIDField(null=True),
        ),
        migrations.AddConstraint(
            model_name="deadletter",
            constraint=models.UniqueConstraint(
                Coalesce("author_id", 0), "message_id", name="chat_deadletter_once"
            ),
        ),
    ]
