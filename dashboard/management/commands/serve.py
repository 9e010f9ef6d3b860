"""Run the whole site in one terminal: the web server and a Celery worker with beat.

`make run` ends here. Ctrl-C stops both; if either stops on its own, so does the other.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve the site with gunicorn and run a Celery worker with beat beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-worker", action="store_true", help="Serve the site only.")

    def handle(self, *args: object, **options: object) -> None:
        host, port = options["host"], options["port"]
        commands = {
            "web": [
                sys.executable,
                "-m",
                "gunicorn",
                "dashboard.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(options["web_workers"]),
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--log-level",
                "warning",
            ],
        }
        if not options["no_worker"]:
            commands["worker"] = [
                sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--beat",
                "--loglevel", "INFO", "--concurrency", "2",
                "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
            ]  # fmt: skip
        processes = {name: subprocess.Popen(command) for name, command in commands.items()}  # noqa: S603
        signal.signal(signal.SIGTERM, _interrupt)
        self.stdout.write(self.style.SUCCESS(f"\nQuorum is up at http://{host}:{port}/\n"))
        try:
            while all(process.poll() is None for process in processes.values()):
                time.sleep(0.5)
            stopped = [name for name, process in processes.items() if process.poll() is not None]
            raise CommandError(f"{', '.join(stopped)} stopped; stopped the rest.")
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
