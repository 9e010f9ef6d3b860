"""The home page's reads of a person's runs and versions: theirs only, newest first, in one
query each however many runs and versions the projects hold (the user indexes serve them)."""

from django.utils import timezone

from governance.registry import selectors
from governance.registry.models import Experiment, RegisteredModel, Run
from tests.factories import make_version


def make_runs(experiment, user: str, count: int, start: int = 0) -> list[Run]:
    now = timezone.now()
    return Run.objects.bulk_create(
        Run(mlflow_id=f"{user}-{n}", experiment=experiment, name=f"{user}-{n}",
            status="FINISHED", user=user, start_time=now - timezone.timedelta(minutes=n))
        for n in range(start, start + count)
    )  # fmt: skip


def test_versions_by_are_those_registered_by_the_person_or_made_from_their_runs(
    project, django_assert_num_queries
):
    experiment = Experiment.objects.create(mlflow_id="7", name="credit/scoring", project=project)
    sams = make_runs(experiment, "sam", 2)
    meis = make_runs(experiment, "mei", 2)
    registered = make_version(project, "credit-scoring", 1)
    registered.user = "sam"
    registered.run = meis[0]
    registered.save()
    from_run = make_version(project, "credit-scoring", 2)
    from_run.user = "mei"
    from_run.run = sams[0]
    from_run.save()
    others = make_version(project, "credit-scoring", 3)
    others.user = "mei"
    others.run = meis[1]
    others.save()

    with django_assert_num_queries(1):
        found = selectors.versions_by("sam", [project.pk])
    assert {v.version for v in found} == {1, 2}
    assert selectors.versions_by("nobody", [project.pk]) == []


def test_versions_by_and_recent_runs_by_take_one_query_however_many_runs(
    project, django_assert_num_queries
):
    experiment = Experiment.objects.create(mlflow_id="7", name="credit/scoring", project=project)
    make_runs(experiment, "sam", 3)
    make_runs(experiment, "mei", 50)
    for n in range(1, 4):
        version = make_version(project, "credit-scoring", n)
        version.user = "sam"
        version.save()

    with django_assert_num_queries(2):
        runs = selectors.recent_runs_by("sam", [project.pk])
        versions = selectors.versions_by("sam", [project.pk])
    assert [r.name for r in runs] == ["sam-0", "sam-1", "sam-2"]
    assert [v.version for v in versions] == [3, 2, 1]
    make_runs(experiment, "sam", 20, start=3)
    with django_assert_num_queries(2):
        runs = selectors.recent_runs_by("sam", [project.pk])
        selectors.versions_by("sam", [project.pk])
    assert len(runs) == 5


def test_versions_in_stages_are_exactly_the_pairs_asked_for_in_one_query(
    project, django_assert_num_queries
):
    a1, a2 = make_version(project, "a", 1), make_version(project, "a", 2)
    b1, b2 = make_version(project, "b", 1), make_version(project, "b", 2)
    make_version(project, "c", 1)

    with django_assert_num_queries(1):
        found = selectors.versions_in_stages([(a1.model_id, 2), (b1.model_id, 1)])
        projects = {v.model.project.slug for v in found}  # read with the versions
    assert {v.pk for v in found} == {a2.pk, b1.pk}
    assert projects == {project.slug}
    assert selectors.versions_in_stages([]) == []
    assert b2.pk not in {v.pk for v in found}


def test_experiments_of_counts_each_experiments_runs_and_its_last_start_in_one_query(
    project, django_assert_num_queries
):
    busy = Experiment.objects.create(mlflow_id="1", name="busy", project=project)
    empty = Experiment.objects.create(mlflow_id="2", name="empty", project=project)
    runs = make_runs(busy, "sam", 4)
    Run.objects.create(mlflow_id="scheduled", experiment=busy, status="SCHEDULED")  # no start
    elsewhere = Experiment.objects.create(mlflow_id="3", name="elsewhere")
    make_runs(elsewhere, "mei", 3)

    with django_assert_num_queries(1):
        found = {e.name: (e.run_count, e.last_run_at) for e in selectors.experiments_of(project)}
    assert found == {"busy": (5, runs[0].start_time), "empty": (0, None)}
    assert empty.pk not in {e.pk for e in selectors.experiments_of(project) if e.run_count}


def test_live_models_in_are_the_first_aliases_and_a_count_per_project_in_two_queries(
    project, django_assert_num_queries
):
    for name, aliases in (("a", {"staging": 2, "shadow": 3}), ("b", {"production": 1}),
                          ("c", {"staging": 1, "production": 2}), ("d", {})):  # fmt: skip
        model = make_version(project, name, 1).model
        model.aliases = aliases
        model.save()
    first = RegisteredModel.objects.filter(name="a").values("pk")

    with django_assert_num_queries(2):
        live = selectors.live_models_in([project.pk], limit=3, first=first)
        slugs = {model.project.slug for model, _, _ in live.rows}  # read with the rows
    assert [(model.name, alias, number) for model, alias, number in live.rows] == [
        ("a", "staging", 2),
        ("a", "shadow", 3),
        ("b", "production", 1),
    ]
    assert slugs == {project.slug}
    assert live.per_project == [(project.slug, project.name, 5)]
    assert live.total == 5
    unranked = selectors.live_models_in([project.pk], limit=10)
    assert [(m.name, alias) for m, alias, _ in unranked.rows] == [
        ("b", "production"), ("c", "production"), ("a", "staging"), ("c", "staging"),
        ("a", "shadow"),
    ]  # fmt: skip
    assert selectors.live_models_in([], limit=3) == selectors.LiveModels(rows=[], per_project=[])
