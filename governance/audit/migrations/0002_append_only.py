from django.db import migrations

from governance.audit.chain import GENESIS
from governance.audit.db import protect_sql, unprotect_sql


def protect(apps, schema_editor):
    for statement in protect_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement)


def unprotect(apps, schema_editor):
    for statement in unprotect_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement)


def plant_head(apps, schema_editor):
    apps.get_model("audit", "ChainHead").objects.get_or_create(
        id=1, defaults={"seq": 0, "hash": GENESIS}
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_chain")]

    operations = [
        migrations.RunPython(protect, unprotect),
        migrations.RunPython(plant_head, migrations.RunPython.noop),
    ]
