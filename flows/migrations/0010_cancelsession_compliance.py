from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('flows', '0009_merge_0006_cancelsession_erased_at_0008_app_currency'),
    ]

    operations = [
        migrations.AddField(
            model_name='cancelsession',
            name='compliance',
            field=models.JSONField(blank=True, default=dict, help_text='The compliance rules applied to this session (region, cancel button, offers, receipt).'),
        ),
    ]
