"""manage.py rotate_encryption_keys: rewrite every stored secret under the first FIELD_ENCRYPTION_KEYS key.

Put the new key first (FIELD_ENCRYPTION_KEYS=new,old), restart every process, run this, then drop the
old key. Thin: brightback_site.secrets does the work.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from brightback_site.secrets import secrets_reencrypt


class Command(BaseCommand):
    help = ("Re-encrypt every stored secret (App secrets, webhook endpoint secrets, billing keys, Slack URLs) "
            "with the first FIELD_ENCRYPTION_KEYS key; the other keys, and SECRET_KEY's derived key, still read "
            "them meanwhile.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Read every secret, rewrite none.")

    def handle(self, *args: object, dry_run: bool = False, **options: object) -> None:
        if not settings.FIELD_ENCRYPTION_KEYS:
            raise CommandError("FIELD_ENCRYPTION_KEYS is empty: set it (newest key first) before rotating.")
        results = secrets_reencrypt(dry_run=dry_run)
        verb = "readable" if dry_run else "rewritten"
        for result in results:
            self.stdout.write(f"{result.column}: {result.rewritten} {verb}")
        lost = [f"{r.column}: {', '.join(map(str, r.unreadable))} cannot be decrypted" for r in results if r.unreadable]
        if lost:
            raise CommandError("some stored secrets read under no configured key (left as they were; add the "
                               "key that wrote them to FIELD_ENCRYPTION_KEYS and run again):\n" + "\n".join(lost))
