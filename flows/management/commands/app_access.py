"""Grant or take away a staff user's access to one App (viewer reads; editor also changes)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows import selectors, services
from flows.models import AppAccess


class Command(BaseCommand):
    help = ("Let a staff user read (--role viewer) or also change (--role editor) one App's rows in the admin, "
            "or take that away (--revoke). Superusers reach every App; other staff only the Apps granted.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_id", help="The App's public app_id.")
        parser.add_argument("username", help="The staff user's username.")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--role", choices=AppAccess.Role.values, help="viewer: reads only; editor: also changes.")
        action.add_argument("--revoke", action="store_true", help="Take away this user's access to the App.")

    def handle(self, *args, app_id: str, username: str, role: str | None, revoke: bool,  # noqa: ANN002, ANN003
               **options) -> None:
        app = selectors.app_by_public_id(app_id)
        if app is None:
            raise CommandError(f"No such app: {app_id}")
        User = get_user_model()  # noqa: N806
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No such user: {username}")
        if revoke:
            if services.app_access_revoke(app=app, user=user):
                self.stdout.write(f"{username} no longer has access to {app.app_id}.")
            else:
                self.stdout.write(f"{username} had no access to {app.app_id}; nothing changed.")
        elif role:
            services.app_access_grant(app=app, user=user, role=role)
            self.stdout.write(f"{username} is now {role} of {app.app_id}.")
        if user.is_superuser:
            self.stdout.write(f"Note: {username} is a superuser and reaches every App whatever is granted.")
        elif not user.is_staff:
            self.stdout.write(f"Note: {username} is not staff and cannot sign in to the admin until made so.")
