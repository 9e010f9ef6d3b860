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
