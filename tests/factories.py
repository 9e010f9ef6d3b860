import factory
from django.contrib.auth import get_user_model

from governance.access import services
from governance.access.models import Project


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"person{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery")


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


def make_project(
    *, admin, owner, slug: str = "credit-risk", name: str = "Credit risk", members=None
) -> Project:
    """A project made the way the site makes one, with `members` ({user: role}) added."""
    project = services.create_project(actor=admin, slug=slug, name=name, owner=owner)
    for user, role in (members or {}).items():
        services.add_member(actor=admin, project=project, user=user, role=role)
    return project


def make_version(project: Project, model: str, number: int):
    """A model version as the MLflow mirror writes one, for tests that need the row and not
    MLflow itself."""
    from governance.registry.models import ModelVersion, RegisteredModel

    registered, _ = RegisteredModel.objects.get_or_create(
        name=model, defaults={"project": project, "linked_in_quorum": True}
    )
    return ModelVersion.objects.create(
        model=registered, version=number, source=f"runs:/test/{model}-{number}", status="READY"
    )


def make_alert(version, feature: str):
    """An open drift alert on a monitor of `version`, as a finished check leaves one, for tests
    that read alerts and do not need the statistics behind them."""
    from governance.monitoring.models import DriftAlert, DriftCheck, Monitor
    from governance.registry.models import DatasetVersion

    project = version.model.project
    reference, _ = DatasetVersion.objects.get_or_create(
        name=f"{version.model.name}-reference", digest="0" * 64, defaults={"project": project}
    )
    monitor, _ = Monitor.objects.get_or_create(
        project=project, version=version, defaults={"name": f"{version} monitor",
                                                    "reference": reference},
    )  # fmt: skip
    check = DriftCheck.objects.create(monitor=monitor, trigger="manual", state="done", drifted=True)
    return DriftAlert.objects.create(
        monitor=monitor, feature=feature, opened_by=check, last_seen=check, reasons=["psi"]
    )


def make_bias_report(version, passed: bool):
    """A finished bias report with its verdict, as the worker leaves one."""
    from django.utils import timezone

    from governance.fairness.models import BiasReport
    from governance.registry.models import DatasetVersion

    project = version.model.project
    table, _ = DatasetVersion.objects.get_or_create(
        name="applicants", digest="1" * 64, defaults={"project": project}
    )
    return BiasReport.objects.create(
        project=project, version=version, dataset=table, y_true="default", sensitive=["sex"],
        state="done", passed=passed, finished_at=timezone.now(),
    )  # fmt: skip
