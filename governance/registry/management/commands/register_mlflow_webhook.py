"""python manage.py register_mlflow_webhook --url https://quorum.example.com/hooks/mlflow/

Webhooks need an MLflow tracking server with a SQL backend; polling stays the safety net.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.errors import DomainError
from governance.registry.mlflow_client import Mlflow
from governance.registry.services import WEBHOOK_EVENTS


class Command(BaseCommand):
    help = "Create (or update) the MLflow webhook that tells Quorum of registry changes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="Quorum's /hooks/mlflow/ address.")
        parser.add_argument("--tracking-uri", default="", help="Default: MLFLOW_TRACKING_URI.")
        parser.add_argument("--name", default="quorum", help="The webhook's name in MLflow.")

    def handle(self, *args: object, url: str, tracking_uri: str, name: str, **options) -> None:
        if not settings.MLFLOW_WEBHOOK_SECRET:
            raise CommandError("Set MLFLOW_WEBHOOK_SECRET first: MLflow signs with it.")
        if not url.startswith(("http://", "https://")) or not url.endswith("/hooks/mlflow/"):
            raise CommandError("The URL is Quorum's address ending in /hooks/mlflow/.")
        try:
            webhook_id = Mlflow(tracking_uri).register_webhook(
                name=name,
                url=url,
                secret=settings.MLFLOW_WEBHOOK_SECRET,
                events=list(WEBHOOK_EVENTS),
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"webhook {webhook_id} sends to {url}"))
