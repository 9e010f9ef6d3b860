"""python manage.py verify_bundle FILE

Checks a release evidence bundle offline: it opens no database connection, so it runs on any
machine with Quorum's code, far from the site that made the bundle. Prints each check, then
"bundle intact" (exit 0) or the problems (exit 1); a file that is not a readable zip exits 2.
"""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.approvals import bundle
from governance.approvals.errors import UnreadableBundle


class Command(BaseCommand):
    help = "Check a release evidence bundle (zip) offline; exit 1 naming every problem found."
    # System checks may read the database; this command must not need one.
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", help="The bundle, e.g. release-12-credit-scoring-v3-production.zip"
        )

    def handle(self, *args: object, file: str, **options: object) -> None:
        try:
            report = bundle.check_bundle(file)
        except UnreadableBundle as error:
            raise CommandError(error.message, returncode=2) from None
        if report.manifest_sha256:
            # The trail's approval.bundle_exported event holds the same digest.
            self.stdout.write(f"manifest SHA-256 {report.manifest_sha256}")
        for check in report.checks:
            if check.skipped:
                self.stdout.write(f"skip  {check.name}: {check.skipped}")
            elif check.problems:
                self.stdout.write(self.style.ERROR(f"FAIL  {check.name}"))
                for problem in check.problems:
                    self.stdout.write(f"      - {problem}")
            else:
                self.stdout.write(f"ok    {check.name}")
        problems = report.problems
        if not problems:
            self.stdout.write(self.style.SUCCESS("bundle intact"))
            return
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        self.stderr.write(self.style.ERROR(f"bundle NOT intact: {count} (listed above)"))
        sys.exit(1)
