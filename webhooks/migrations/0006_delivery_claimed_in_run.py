from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0005_endpoint_wake_requested_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='claimed_in_run',
            field=models.BooleanField(default=False, editable=False),
        ),
    ]
