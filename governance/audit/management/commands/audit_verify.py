"""python manage.py audit_verify [--checkpoint SEQ:HASH ...]

Exits 0 when the trail is intact, 1 with the first broken event and why otherwise. The result
is recorded in the trail itself and emailed to the auditors with the new checkpoint.
"""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.audit import services
from governance.audit.errors import InvalidCheckpoint
from governance.audit.models import VerificationRun
from governance.audit.verification import parse_checkpoint, walk_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit 1 naming the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="A head published earlier (emailed after each verification). Repeatable.",
        )
        parser.add_argument(
            "--no-record",
            action="store_true",
            help="Only check: write no verification event (e.g. on a read-only replica).",
        )

    def handle(self, *args: object, checkpoint: list[str], no_record: bool, **options) -> None:
        try:
            checkpoints = [parse_checkpoint(text) for text in checkpoint]
        except InvalidCheckpoint as error:
            raise CommandError(error.message) from None
        # The first checkpoint rides along with the recorded run; any others are walked after.
        first, others = (checkpoints[0], checkpoints[1:]) if checkpoints else (None, [])
        progress = self._progress if sys.stderr.isatty() else None
        if no_record:
            outcome = walk_chain(checkpoint=first, progress=progress)
            found = outcome.first_break
            verdict = (outcome.checked, found and (found.seq, found.kind, found.reason))
        else:
            run = services.verify_now(
                actor=services.SystemActor("audit_verify command"),
                trigger=VerificationRun.Trigger.COMMAND,
                checkpoint=first,
                progress=progress,
            )
            if run.state == VerificationRun.State.ERROR:
                raise CommandError(f"the verification could not finish: {run.reason}")
            broken = run.state == VerificationRun.State.FAILED
            verdict = (run.checked, broken and (run.break_seq, run.break_kind, run.reason))
            self.stdout.write(f"checkpoint {run.checkpoint}")
        for other in others:
            found = walk_chain(checkpoint=other).first_break
            if found and not verdict[1]:
                verdict = (verdict[0], (found.seq, found.kind, found.reason))
        self._report(*verdict)

    def _progress(self, done: int, total: int) -> None:
        sys.stderr.write(f"\rchecked up to #{done} of #{total}")
        sys.stderr.flush()

    def _report(self, checked: int, found: tuple[int, str, str] | None) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        if not found:
            self.stdout.write(self.style.SUCCESS(f"intact: {checked} events verified"))
            return
        seq, kind, reason = found
        self.stderr.write(self.style.ERROR(f"broken at #{seq} ({kind}): {reason}"))
        sys.exit(1)
