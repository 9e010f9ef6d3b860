"""Each person's home shows the work of every role they hold, across their projects, each tile
linking to its page, in a number of queries that does not grow with the work."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.access.roles import Role
from governance.approvals import services as approvals
from governance.audit import services as audit
from governance.audit.models import VerificationRun
from governance.delivery.models import Deployment, Job, RetrainingPolicy, RetrainingRun, Target
from governance.notify.kinds import Kind
from governance.notify.services import notify
from governance.registry.models import Experiment, Run
from tests.factories import make_alert, make_bias_report, make_project, make_version


def page_of(client) -> str:
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return response.content.decode()


def live_model(project, name: str, number: int = 1):
    version = make_version(project, name, number)
    version.model.aliases = {"production": number}
    version.model.save()
    return version


def test_a_product_owner_sees_live_models_with_their_health_and_what_waits_for_them(
    login, project, owner, scientist
):
    drifting = live_model(project, "credit-scoring")
    make_alert(drifting, "income")
    make_bias_report(drifting, passed=False)
    healthy = live_model(project, "churn")
    make_bias_report(healthy, passed=True)
    candidate = make_version(project, "credit-scoring", 2)
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={Role.PRODUCT_OWNER: 1}
    )
    release = approvals.open_request(actor=scientist, version=candidate, stage="production")

    page = page_of(login(owner))
    assert "As product owner" in page
    assert 'credit-scoring v1</a> <span class="badge role">production' in page
    assert "1 drift alert" in page
    assert "bias failed" in page
    assert "no drift" in page
    assert "bias passed" in page
    assert reverse("approval", args=[project.slug, release.pk]) in page
    assert "credit-scoring v1 monitor: income" in page
    assert reverse("bias_report", args=[project.slug, drifting.bias_reports.get().pk]) in page
    assert "As data scientist" not in page


def test_a_data_scientist_sees_their_runs_versions_with_status_and_mentions(
    login, project, scientist, owner
):
    experiment = Experiment.objects.create(mlflow_id="7", name="credit/scoring", project=project)
    Run.objects.create(mlflow_id="r-sam", experiment=experiment, name="lr-sam", status="FINISHED",
                       user="sam", start_time=timezone.now())  # fmt: skip
    Run.objects.create(mlflow_id="r-mei", experiment=experiment, name="lr-mei", status="FINISHED",
                       user="mei", start_time=timezone.now())  # fmt: skip
    mine = make_version(project, "credit-scoring", 1)
    mine.user = "sam"
    mine.save()
    make_bias_report(mine, passed=True)
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={Role.PRODUCT_OWNER: 1}
    )
    approvals.open_request(actor=scientist, version=mine, stage="production")
    notify(recipients=[scientist], kind=Kind.MENTION, subject="olivia mentioned you on v1",
           url="/", key="mention-1", project=project)  # fmt: skip

    page = page_of(login(scientist))
    assert "As data scientist" in page
    assert "lr-sam" in page
    assert "lr-mei" not in page
    assert "production: open" in page
    assert "bias passed" in page
    assert "olivia mentioned you on v1" in page


def test_a_data_scientist_sees_what_others_commented_on_their_versions_and_releases(
    login, project, scientist, owner, engineer
):
    mine = make_version(project, "credit-scoring", 1)
    mine.user = "sam"
    mine.save()
    theirs = make_version(project, "churn", 1)
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={Role.PRODUCT_OWNER: 1}
    )
    release = approvals.open_request(actor=scientist, version=mine, stage="production")
    approvals.add_comment(actor=owner, version=mine, body="Which holdout did you use?")
    approvals.add_comment(actor=engineer, approval=release, body="Latency is fine on staging.")
    approvals.add_comment(actor=scientist, version=mine, body="The March one.")
    approvals.add_comment(actor=owner, version=theirs, body="Not yours to read here.")

    page = page_of(login(scientist))
    tile = page.split("Comments on your work", 1)[1].split("</article>", 1)[0]
    assert tile.index("Latency is fine on staging.") < tile.index("Which holdout did you use?")
    assert reverse("approval", args=[project.slug, release.pk]) in tile
    assert reverse("model_version", args=[project.slug, "credit-scoring", 1]) in tile
    assert "The March one." not in tile  # their own
    assert "Not yours to read here." not in tile


def test_an_ml_engineer_sees_jobs_running_and_failed(login, project, engineer):
    version = make_version(project, "credit-scoring", 1)
    running = Job.objects.create(
        project=project, kind="package", version=version, state=Job.State.RUNNING,
        progress=40, step="converting to ONNX",
    )  # fmt: skip
    failed = Job.objects.create(
        project=project, kind="package", version=version, state=Job.State.FAILED,
        error="the scoring server did not start",
    )  # fmt: skip
    Job.objects.create(project=project, kind="package", version=version, state="succeeded")

    page = page_of(login(engineer))
    assert "As ML engineer" in page
    assert reverse("job", args=[project.slug, running.pk]) in page
    assert "converting to ONNX" in page
    assert reverse("job", args=[project.slug, failed.pk]) in page
    assert "the scoring server did not start" in page


def deployed(project, version, name: str, **fields) -> Deployment:
    target = Target.objects.create(project=project, name=name, kind="webhook", stage="staging")
    return Deployment.objects.create(target=target, version=version, **fields)


def retrained(version, registered=None, trigger="drift") -> RetrainingRun:
    policy, _ = RetrainingPolicy.objects.get_or_create(
        model=version.model, project=version.model.project, entry_point="pipelines:credit"
    )
    job = Job.objects.create(
        project=version.model.project, kind="retrain", version=version, state="succeeded"
    )
    return RetrainingRun.objects.create(
        policy=policy, job=job, trigger=trigger, entry_point=policy.entry_point,
        registered_version=registered,
    )  # fmt: skip


def test_an_ml_engineer_sees_deployments_with_their_health_unhealthy_first(
    login, project, engineer
):
    version = make_version(project, "credit-scoring", 1)
    deployed(project, version, "edge", state="live", health="healthy")
    deployed(project, version, "batch", state="live", health="unhealthy")
    deployed(project, version, "old", state="superseded", health="healthy")
    failing = Deployment.objects.get(target__name="batch")

    page = page_of(login(engineer))
    tile = page.split("<h2>Deployments", 1)[1].split("</article>", 1)[0]
    assert '<span class="badge">2</span>' in tile  # the superseded one left service
    assert tile.index(">batch<") < tile.index(">edge<")
    assert reverse("target", args=[project.slug, failing.target_id]) in tile
    assert '<span class="badge bad">unhealthy</span>' in tile
    assert '<span class="badge ok">healthy</span>' in tile
    assert ">old<" not in tile


def test_an_ml_engineer_sees_the_newest_retraining_runs_and_what_they_registered(
    login, project, engineer
):
    version = make_version(project, "credit-scoring", 1)
    newer = make_version(project, "credit-scoring", 2)
    run = retrained(version, registered=newer)

    page = page_of(login(engineer))
    tile = page.split("<h2>Retraining runs", 1)[1].split("</article>", 1)[0]
    assert reverse("job", args=[project.slug, run.job_id]) in tile
    assert "drift alert" in tile
    assert reverse("model_version", args=[project.slug, "credit-scoring", 2]) in tile


def test_an_auditor_sees_trail_activity_the_last_verification_and_their_exports(
    login, project, auditor, tmp_path
):
    run = audit.verify_now(actor=auditor, trigger=VerificationRun.Trigger.COMMAND)
    with (tmp_path / "trail.csv").open("wb") as destination:
        exported = audit.export_trail(
            actor=auditor, fmt="csv", criteria={}, destination=destination
        )
    page = page_of(login(auditor))
    assert "As auditor" in page
    assert "today</span>" in page
    assert reverse("audit_verification", args=[run.pk]) in page
    assert "intact" in page
    assert reverse("audit_manifest", args=[exported.seq]) in page


def test_a_viewer_has_no_role_section_only_the_projects(login, project, viewer):
    page = page_of(login(viewer))
    assert "As " not in page.split("<main", 1)[1].split("Your projects")[0]
    assert "Credit risk" in page


@pytest.mark.parametrize("role", ["owner", "scientist", "engineer", "auditor", "admin_user"])
def test_home_queries_do_not_grow_with_the_work(
    request, role, login, project, owner, scientist, django_assert_max_num_queries
):
    person = request.getfixturevalue(role)
    client = login(person)

    def add_work(n: int) -> None:
        for i in range(n):
            version = live_model(project, f"model-{role}-{i}-{n}")
            version.user = "sam"
            version.save()
            make_alert(version, "income")
            make_bias_report(version, passed=i % 2 == 0)
            Job.objects.create(project=project, kind="package", version=version, state="failed")
            deployed(project, version, f"t-{role}-{i}-{n}", state="live", health="healthy")
            retrained(version, registered=version)
            approvals.add_comment(actor=owner, version=version, body=f"comment {i}")
            notify(recipients=[scientist], kind=Kind.MENTION, subject=f"m{i}", url="/",
                   key=f"m-{role}-{i}-{n}", project=project)  # fmt: skip

    add_work(1)
    with django_assert_max_num_queries(60) as few:
        page_of(client)
    add_work(8)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page_of(client)


def staged_models(project, prefix: str, count: int) -> list:
    """`count` models of the project, each with a production and a staging version."""
    versions = []
    for i in range(count):
        make_version(project, f"{prefix}-{i:02}", 1)
        version = make_version(project, f"{prefix}-{i:02}", 2)
        version.model.aliases = {"staging": 2, "production": 1}
        version.model.save()
        versions.append(version)
    return versions


def live_rows(page: str) -> list[str]:
    tile = page.split("Live models", 1)[1].split("</article>", 1)[0]
    return re.findall(r'">([^<]+)</a> <span class="badge role">(\w+)<', tile)


def test_the_live_models_tile_shows_eight_aliases_drifting_first_and_counts_the_rest(
    login, project, owner
):
    versions = staged_models(project, "model", 6)
    make_alert(versions[4], "income")

    page = page_of(login(owner))
    assert live_rows(page) == [
        ("model-04 v1", "production"), ("model-04 v2", "staging"),
        ("model-00 v1", "production"), ("model-01 v1", "production"),
        ("model-02 v1", "production"), ("model-03 v1", "production"),
        ("model-05 v1", "production"), ("model-00 v2", "staging"),
    ]  # fmt: skip
    assert 'Live models <span class="badge">12</span>' in page
    more = reverse("models", args=[project.slug])
    assert f'<a href="{more}">and 4 more</a>' in page


def test_the_live_models_tile_links_the_rest_per_project_when_there_are_several(
    login, project, admin_user, owner
):
    other = make_project(admin=admin_user, owner=owner, slug="churn", name="Churn")
    staged_models(project, "credit", 3)
    staged_models(other, "churn", 4)

    page = page_of(login(owner))
    assert len(live_rows(page)) == 8
    # Production first across both projects, by name: the seven models' production
    # versions, then churn-00's staging one.
    assert live_rows(page)[6:] == [("credit-02 v1", "production"), ("churn-00 v2", "staging")]
    assert "and 6 more in" in page
    assert f'<a href="{reverse("models", args=["churn"])}">Churn</a> (3)' in page
    assert f'<a href="{reverse("models", args=[project.slug])}">Credit risk</a> (3)' in page


def test_the_live_models_tile_says_no_more_when_everything_fits(login, project, owner):
    staged_models(project, "model", 4)
    page = page_of(login(owner))
    assert len(live_rows(page)) == 8
    assert " more" not in page.split("Live models", 1)[1].split("</article>", 1)[0]


def test_the_live_models_tile_takes_the_same_queries_for_three_models_and_for_thirty(
    login, project, owner, django_assert_max_num_queries
):
    client = login(owner)
    for version in staged_models(project, "few", 3):
        make_alert(version, "income")
    with django_assert_max_num_queries(60) as few:
        page_of(client)
    for version in staged_models(project, "many", 27):
        make_alert(version, "income")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = page_of(client)
    assert len(live_rows(page)) == 8
    assert "and 52 more" in page


def test_the_project_overview_shows_a_timeline_of_notable_events_only(
    login, project, owner, scientist, viewer, django_assert_max_num_queries
):
    version = make_version(project, "credit-scoring", 1)
    approvals.save_policy(
        actor=owner, project=project, stage="production", required={Role.PRODUCT_OWNER: 1}
    )
    approvals.open_request(actor=scientist, version=version, stage="production")
    notify(
        recipients=[owner], kind=Kind.MENTION, subject="hello", url="/", key="k", project=project
    )
    client = login(viewer)  # a sign-in is on the trail, and is not notable
    url = reverse("project_overview", args=[project.slug])
    with django_assert_max_num_queries(25) as few:
        page = client.get(url).content.decode()
    assert "Timeline" in page
    assert "production" in page
    assert "signed in" not in page
    approvals.save_policy(
        actor=owner, project=project, stage="staging", required={Role.PRODUCT_OWNER: 1}
    )
    for n in range(2, 12):
        version = make_version(project, "credit-scoring", n)
        approvals.open_request(actor=scientist, version=version, stage="staging")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)
