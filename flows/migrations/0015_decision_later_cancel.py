"""A later Cancel supersedes a save: a session may have a save and then a cancel (each kind once), and
`session.decision` becomes the decision in force (Decision.in_force_for). Every existing decision is its
session's only one, so each is the one in force."""

import django.db.models.deletion
from django.db import migrations, models


def every_decision_in_force(apps, schema_editor):  # noqa: ANN001, ANN201
    Decision = apps.get_model("flows", "Decision")
    Decision.objects.filter(in_force_for__isnull=True).update(in_force_for=models.F("session"))


class Migration(migrations.Migration):

    dependencies = [
        ('flows', '0014_session_indexes_for_writes'),
        ('offers', '0003_plan_change_timing'),
    ]

    operations = [
        migrations.AlterField(
            model_name='decision',
            name='session',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='decisions', to='flows.cancelsession'),
        ),
        migrations.AddField(
            model_name='decision',
            name='in_force_for',
            field=models.OneToOneField(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='decision', to='flows.cancelsession'),
        ),
        migrations.RunPython(every_decision_in_force, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='decision',
            constraint=models.UniqueConstraint(fields=('session', 'kind'), name='decision_once_per_session_kind'),
        ),
        migrations.AddConstraint(
            model_name='decision',
            constraint=models.CheckConstraint(condition=models.Q(('in_force_for__isnull', True), ('in_force_for', models.F('session')), _connector='OR'), name='decision_in_force_for_its_own_session'),
        ),
    ]
