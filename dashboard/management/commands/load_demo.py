"""Set up the demo: one person per role, a site admin, and two projects.

Runs through the same services as the site. Running it again changes nothing; passwords are
printed only for people it creates (and kept in var/demo-people.txt for the newcomer).
"""

import io
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from governance.access import services
from governance.access.models import Membership, Project
from governance.access.roles import Role
from governance.approvals import services as approvals
from governance.approvals.models import ApprovalPolicy, ApprovalRequest
from governance.delivery import services as delivery
from governance.fairness import services as fairness
from governance.monitoring import services as monitoring
from governance.registry import demo as mlflow_demo
from governance.registry import services as registry
from governance.registry.errors import SyncBusy
from governance.registry.models import ModelVersion

PEOPLE = [
    # username, first name, last name, role in the demo projects (None: site admin)
    ("admin", "Ada", "Admin", None),
    ("priya", "Priya", "Patel", Role.PRODUCT_OWNER),
    ("sam", "Sam", "Okafor", Role.DATA_SCIENTIST),
    ("mei", "Mei", "Lin", Role.ML_ENGINEER),
    ("alex", "Alex", "Novak", Role.AUDITOR),
    ("val", "Val", "Romero", Role.VIEWER),
]

DEMO_TEAM = ["priya", "sam", "mei"]

PROJECTS = [
    (
        "credit-risk",
        "Credit risk scoring",
        "Scores consumer loan applications. Releases need a product owner and an ML engineer; "
        "bias across age groups is reviewed before every production release.",
        ["priya", "sam", "mei", "alex", "val"],
    ),
    (
        "churn",
        "Customer churn",
        "Predicts which subscribers are likely to leave next month, for the retention team.",
        ["priya", "sam", "mei", "alex"],
    ),
]


class Command(BaseCommand):
    help = "Create the demo people and projects (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", help="Give every new demo person this password instead of a random one."
        )
        parser.add_argument(
            "--no-mlflow", action="store_true", help="People and projects only: train nothing."
        )

    def handle(
        self, *args: object, password: str | None = None, no_mlflow: bool = False, **options
    ) -> None:
        User = get_user_model()  # noqa: N806
        created: list[tuple[str, str, str]] = []
        with transaction.atomic():
            people = {}
            for username, first, last, role in PEOPLE:
                user = User.objects.filter(username=username).first()
                if user is None:
                    secret = password or secrets.token_urlsafe(9)
                    user = User.objects.create_user(
                        username=username,
                        email=f"{username}@example.com",
                        password=secret,
                        first_name=first,
                        last_name=last,
                        is_staff=role is None,
                        is_superuser=role is None,
                    )
                    created.append((username, secret, Role(role).label if role else "Site admin"))
                people[username] = (user, role)
            admin = people["admin"][0]
            for slug, name, description, members in PROJECTS:
                project = Project.objects.filter(slug=slug).first()
                if project is None:
                    owner = people[members[0]][0]
                    project = services.create_project(
                        actor=admin, slug=slug, name=name, description=description, owner=owner
                    )
                present = set(
                    Membership.objects.filter(project=project).values_list(
                        "user__username", flat=True
                    )
                )
                for username in members:
                    if username not in present:
                        user, role = people[username]
                        services.add_member(actor=admin, project=project, user=user, role=role)
        self._report(created)
        if not no_mlflow:
            self._mlflow()

    def _mlflow(self) -> None:
        uri = settings.MLFLOW_TRACKING_URI
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.stdout.write("Training the demo's models in MLflow…")
        if mlflow_demo.load(uri, settings.MLFLOW_ARTIFACT_ROOT):
            self.stdout.write(self.style.SUCCESS(f"Demo experiments and models are in {uri}."))
        try:
            job = registry.sync_mlflow(trigger="demo")
        except SyncBusy:
            return  # the worker is syncing already
        self.stdout.write(f"Mirrored from MLflow: {job.counts}")
        self._releases()

    def _releases(self) -> None:
        """Release policies for the credit-risk project, and one release waiting for its
        product owner and ML engineer. Only once: a policy there means it was done."""
        project = Project.objects.get(slug="credit-risk")
        if ApprovalPolicy.objects.filter(project=project).exists():
            return
        version = ModelVersion.objects.filter(model__name="credit-scoring", version=2).first()
        if version is None:
            return  # MLflow was synced by a worker that has not got there yet
        people = {u.username: u for u in get_user_model().objects.filter(username__in=DEMO_TEAM)}
        approvals.save_policy(
            actor=people["priya"],
            project=project,
            stage="production",
            required={Role.PRODUCT_OWNER: 1, Role.ML_ENGINEER: 1},
            gates_=[
                {"kind": "metric", "condition": "roc_auc >= 0.75 and accuracy >= 0.7"},
                {"kind": "bias_report_passed"},
            ],
            guard=True,
            note="Production needs the business and engineering to agree.",
        )
        approvals.save_policy(
            actor=people["priya"],
            project=project,
            stage="staging",
            required={Role.ML_ENGINEER: 1},
            open_days=7,
            note="Staging is for load tests.",
        )
        approval = approvals.open_request(
            actor=people["sam"],
            version=version,
            stage="production",
            note="The gradient boosting model beats the champion's AUC on the holdout.",
        )
        self.stdout.write(
            f"Release request #{approval.pk} waits for priya (product owner) and mei (ML engineer)."
        )
        self._monitoring(project, version, people)
        self._bias_reports(project, people)
        self._retraining(version, people)
        self._delivery(project, people)

    def _monitoring(self, project: Project, version: ModelVersion, people: dict) -> None:
        """A monitor of credit-scoring v2 with three batches, the last one drifted, each with
        its outcomes learnt later, so that the model's quality shows over time."""
        import pyarrow as pa

        mei = people["mei"]
        credit = mlflow_demo.credit_applicants()
        # The held-out split: data the model never saw, so its quality there is honest.
        reference = registry.keep_table(
            actor=mei,
            project=project,
            name="credit-applicants holdout with outcomes",
            table=pa.Table.from_pandas(
                credit.test[[*credit.features, credit.target]], preserve_index=False
            ),
            source="demo: the held-out split",
        )
        monitor = monitoring.create_monitor(
            actor=mei,
            project=project,
            name="credit-scoring inputs",
            reference=reference,
            version=version,
            # Six features: two drifting is enough for this team to call the data drifted; a
            # day's thousand rows move precision by up to a tenth, so alert past 0.12.
            thresholds={"drifted_share": 0.3, "quality": {"metric_drop": 0.12}},
            task="classification",
            label_column=credit.target,
            positive_label="1",
        )
        monitoring.watch_monitor(actor=people["priya"], monitor=monitor)
        for day, (batch, outcomes) in enumerate(mlflow_demo.drifting_batches(), start=1):
            added = monitoring.add_batch(
                actor=mei,
                monitor=monitor,
                content=io.BytesIO(batch.to_csv(index=False).encode()),
                filename=f"applications-day-{day}.csv",
            )
            # Checked here, so the demo shows them at once; the worker finds them done.
            monitoring.run_drift_check(check_id=added.checks.get().pk)
            monitoring.check_data_quality(batch_id=added.pk)
            monitoring.add_labels(
                actor=mei,
                batch=added,
                content=io.BytesIO(outcomes.to_csv(index=False).encode()),
                filename=f"outcomes-day-{day}.csv",
            )
            monitoring.compute_model_quality(batch_id=added.pk)
        alerts = monitor.alerts.count()
        self.stdout.write(f"Monitor '{monitor.name}' has {alerts} alert(s).")

    def _bias_reports(self, project: Project, people: dict) -> None:
        """Bias reports by sex of the champion (v2) and of the first logistic model (v1), each
        predicted by the version's own MLflow model on the held-out applicants: v2 keeps within
        the four-fifths rule, v1 does not, so its bias gate is red. Made here, as the worker
        would, so the demo shows them at once; then the waiting release's gates are judged."""
        import pyarrow as pa

        sam = people["sam"]
        evaluation = registry.keep_table(
            actor=sam,
            project=project,
            name="credit-applicants holdout",
            table=pa.Table.from_pandas(mlflow_demo.credit_applicants().test, preserve_index=False),
            source="demo: the held-out split",
        )
        for number in (2, 1):
            version = ModelVersion.objects.get(model__name="credit-scoring", version=number)
            asked = fairness.request_bias_report(
                actor=sam, version=version, dataset=evaluation, y_true="default", sensitive=["sex"]
            )
            report = fairness.generate_bias_report(report_id=asked.pk)
            verdict = {True: "passes", False: "fails"}.get(report.passed, f"failed: {report.error}")
            self.stdout.write(f"The bias report of {version} {verdict}.")
        for approval in ApprovalRequest.objects.filter(project=project, state="open"):
            approvals.recheck_gates(actor=people["priya"], approval=approval)

    def _retraining(self, version: ModelVersion, people: dict) -> None:
        """A retraining policy for credit-scoring that retrains it on its monitored batches
        when drift is alerted, and asks for a staging release of each new version. Set after
        the demo's own batches: the next drifted batch starts the first run."""
        policy = delivery.save_retraining_policy(
            actor=people["mei"],
            model=version.model,
            entry_point="governance.delivery.demo_pipeline:CREDIT_SCORING",
            params={"n_estimators": 120, "max_depth": 3, "learning_rate": 0.1},
            seed=1,
            cron="0 3 * * sun",
            on_drift=True,
            cooldown_minutes=60,
            open_approval_for_stage="staging",
        )
        self.stdout.write(
            f"Retraining of {version.model.name}: on drift, and {policy.cron} (UTC); "
            "each new version asks for staging."
        )

    def _delivery(self, project: Project, people: dict) -> None:
        """A local deployment target for staging, and credit-scoring v1 approved for staging by
        the ML engineer: ready to be packaged, profiled and deployed."""
        target = delivery.create_target(
            actor=people["mei"],
            project=project,
            name="local staging",
            kind="local",
            stage="staging",
        )
        version = ModelVersion.objects.get(model__name="credit-scoring", version=1)
        release = approvals.open_request(
            actor=people["sam"],
            version=version,
            stage="staging",
            note="The first model, for the load tests of the serving stack.",
        )
        approvals.decide(actor=people["mei"], approval=release, verdict="approve")
        self.stdout.write(
            f"Target '{target.name}' serves staging on this machine; {version} is approved for it."
        )

    def _report(self, created: list[tuple[str, str, str]]) -> None:
        if not created:
            self.stdout.write("Demo already set up; the passwords are in var/demo-people.txt.")
            return
        lines = [f"  {username:<8} {secret:<16} {role}" for username, secret, role in created]
        table = "\n".join(["Demo people (username, password, role):", *lines])
        path = Path(settings.VAR_DIR) / "demo-people.txt"
        with path.open("a") as handle:
            handle.write(table + "\n")
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(table))
