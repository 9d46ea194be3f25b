from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('flows', '0012_merge_flow_version_reason_category'),
        ('flows', '0012_merge_reason_category_session_reactivated'),
    ]

    operations = []
