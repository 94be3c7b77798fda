from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_delivery_status")]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="payload",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
