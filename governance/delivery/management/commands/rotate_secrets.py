"""Encrypt every project secret again with the first of QUORUM_SECRET_KEYS.

Rotate a key: put the new key first in QUORUM_SECRET_KEYS and keep the old one after it, run
this, then drop the old key.
"""

from django.core.management.base import BaseCommand, CommandError

from governance.delivery import services
from governance.errors import DomainError


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args: object, **options: object) -> None:
        try:
            count = services.rotate_secrets()
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"{count} secret(s) encrypted with the first key.")
