"""python manage.py sync_mlflow [--tracking-uri URI] [--full]"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.errors import DomainError
from governance.registry import services
from governance.registry.mlflow_client import Mlflow


class Command(BaseCommand):
    help = "Mirror MLflow's experiments, runs and registered models into Quorum."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tracking-uri", default="", help="Default: MLFLOW_TRACKING_URI.")
        parser.add_argument(
            "--full", action="store_true", help="Read everything and mark what MLflow deleted."
        )

    def handle(self, *args: object, tracking_uri: str, full: bool, **options: object) -> None:
        def progress(phase: str, done: int) -> None:
            if options["verbosity"] > 1:
                self.stdout.write(f"{phase}: {done}")

        try:
            job = services.sync_mlflow(
                trigger="command", full=full, mlflow=Mlflow(tracking_uri), progress=progress
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        counts = ", ".join(f"{name} {value}" for name, value in sorted(job.counts.items()))
        self.stdout.write(self.style.SUCCESS(f"synced: {counts or 'nothing new'}"))
