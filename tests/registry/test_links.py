import pytest
from django.urls import reverse

from governance.access.errors import NotAllowed
from governance.audit.models import AuditEvent
from governance.errors import InvalidInput
from governance.registry import services
from governance.registry.errors import ExperimentNotFound, LinkRefused
from governance.registry.models import Experiment, RegisteredModel
from tests.factories import make_project


def sync() -> None:
    services.sync_mlflow(trigger="test")


@pytest.fixture
def orphans(project, tracking):
    tracking.run(tracking.experiment("untagged"))
    tracking.model("untagged-model")
    sync()


def test_product_owner_links_an_unclaimed_experiment_and_the_sync_keeps_it(
    project, owner, orphans, tracking
):
    services.link_to_project(actor=owner, kind="experiment", name="untagged", project=project)
    sync()
    experiment = Experiment.objects.get(name="untagged")
    assert (experiment.project, experiment.linked_in_quorum) == (project, True)
    event = AuditEvent.objects.get(action="experiment.linked")
    assert event.data == {"before": {"project": None}, "after": {"project": "credit-risk"}}


def test_an_object_tagged_to_another_project_stays_there(
    project, owner, tracking, admin_user, outsider
):
    make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    tracking.model("churn-model", project="churn")
    sync()
    with pytest.raises(LinkRefused, match="MLflow tag"):
        services.link_to_project(actor=owner, kind="model", name="churn-model", project=project)
    assert RegisteredModel.objects.get().project.slug == "churn"


def test_only_admins_move_a_link_between_projects(project, owner, orphans, admin_user, outsider):
    other = make_project(admin=admin_user, owner=outsider, slug="churn", name="Churn")
    services.link_to_project(actor=outsider, kind="model", name="untagged-model", project=other)
    with pytest.raises(LinkRefused, match="admin"):
        services.link_to_project(actor=owner, kind="model", name="untagged-model", project=project)
    services.link_to_project(actor=admin_user, kind="model", name="untagged-model", project=project)
    assert RegisteredModel.objects.get().project == project


@pytest.mark.parametrize("who", ["scientist", "viewer", "auditor"])
def test_other_roles_may_not_link(project, orphans, request, who):
    with pytest.raises(NotAllowed):
        services.link_to_project(
            actor=request.getfixturevalue(who), kind="experiment", name="untagged", project=project
        )
    assert Experiment.objects.get(name="untagged").project is None


def test_an_unknown_name_or_kind_is_refused(project, owner, orphans):
    with pytest.raises(ExperimentNotFound):
        services.link_to_project(actor=owner, kind="experiment", name="nope", project=project)
    with pytest.raises(InvalidInput):
        services.link_to_project(actor=owner, kind="dataset", name="untagged", project=project)


def test_unlinking_gives_the_object_back_to_its_tag(project, owner, orphans):
    services.link_to_project(actor=owner, kind="experiment", name="untagged", project=project)
    services.unlink_from_project(actor=owner, kind="experiment", name="untagged", project=project)
    experiment = Experiment.objects.get(name="untagged")
    assert (experiment.project, experiment.linked_in_quorum) == (None, False)
    with pytest.raises(LinkRefused):
        services.unlink_from_project(
            actor=owner, kind="experiment", name="untagged", project=project
        )


# Pages


def test_product_owner_links_from_the_project_page(login, project, owner, orphans):
    client = login(owner)
    response = client.post(
        reverse("mlflow_links", args=[project.slug]), {"kind": "experiment", "name": "untagged"}
    )
    assert response.status_code == 302
    assert b"untagged" in client.get(reverse("experiments", args=[project.slug])).content


def test_a_refused_link_shows_why(login, project, owner, orphans):
    response = login(owner).post(
        reverse("mlflow_links", args=[project.slug]), {"kind": "experiment", "name": "ghost"}
    )
    assert response.status_code == 404


def test_scientists_do_not_get_the_links_page(login, project, scientist):
    assert login(scientist).get(reverse("mlflow_links", args=[project.slug])).status_code == 403


def test_admins_see_the_inbox_and_link_from_it(login, project, admin_user, orphans):
    client = login(admin_user)
    page = client.get(reverse("mlflow_inbox")).content.decode()
    assert "untagged" in page
    assert "untagged-model" in page
    client.post(
        reverse("mlflow_inbox"),
        {"kind": "model", "name": "untagged-model", "project": project.slug},
    )
    assert RegisteredModel.objects.get().project == project


def test_the_inbox_is_for_admins_only(login, project, owner, orphans):
    assert login(owner).get(reverse("mlflow_inbox")).status_code == 403
