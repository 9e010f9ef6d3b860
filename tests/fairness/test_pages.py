"""The bias report pages: asking for one on the version's page, following it, reading it, the
project's fairness policy, and the model card's link to the latest verdict."""

import pytest
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.fairness import services
from governance.fairness.models import BiasReport, FairnessPolicy
from tests.fairness.conftest import applicants

VERSION_PAGE = ("credit-risk", "credit-scoring", 1)


def ask(actor, version, dataset, **changes):
    options = {"y_true": "approved", "y_pred": "predicted", "sensitive": ["sex"], **changes}
    return services.request_bias_report(actor=actor, version=version, dataset=dataset, **options)


def report_url(report) -> str:
    return reverse("bias_report", args=["credit-risk", report.pk])


def test_a_finished_report_shows_groups_worst_pairs_charts_and_the_verdict(
    login, scientist, viewer, version, keep
):
    report = services.generate_bias_report(
        report_id=ask(scientist, version, keep(applicants(biased=True))).pk
    )
    body = login(viewer).get(report_url(report)).content.decode()
    assert "bias report fails" not in body  # the version page's badge, not this one
    assert '<span class="badge bad">fails</span>' in body
    assert "demographic parity ratio" in body
    assert "female vs male" in body
    assert 'data-target="selection-chart"' in body
    assert "ratio floor: 0.8" in body
    assert 'data-target="rates-chart"' in body, "error rates are drawn with their limits"
    assert "hx-trigger" not in body


def test_a_queued_report_polls_until_the_worker_is_done(login, scientist, version, keep):
    report = ask(scientist, version, keep(applicants(biased=False)))
    client = login(scientist)
    page = client.get(report_url(report)).content.decode()
    assert "Waiting for a worker" in page
    assert 'hx-trigger="every 2s"' in page
    polled = client.get(report_url(report), headers={"HX-Request": "true"})
    assert polled.status_code == 200
    assert "<html" not in polled.content.decode()
    services.generate_bias_report(report_id=report.pk)
    done = client.get(report_url(report), headers={"HX-Request": "true"})
    assert done.status_code == 286
    assert "Per group" in done.content.decode()
    assert "hx-trigger" not in done.content.decode()


def test_a_report_that_failed_shows_why(login, scientist, model_version, keep, tmp_path):
    import shutil

    report = ask(scientist, model_version, keep(applicants(biased=False)), y_pred="")
    shutil.rmtree(tmp_path / "artifacts")
    services.generate_bias_report(report_id=report.pk)
    body = login(scientist).get(report_url(report)).content.decode()
    assert "could not be made" in body
    assert "could not be loaded" in body


def test_a_report_of_another_project_is_not_found(login, scientist, outsider, version, keep):
    report = ask(scientist, version, keep(applicants(biased=False)))
    assert login(outsider).get(report_url(report)).status_code == 404
    missing = reverse("bias_report", args=["credit-risk", report.pk + 100])
    assert login(scientist).get(missing).status_code == 404


def test_the_version_page_offers_the_form_to_those_who_may_ask(
    login, scientist, viewer, version, keep
):
    keep(applicants(biased=False))
    url = reverse("model_version", args=VERSION_PAGE)
    assert "Generate a bias report" in login(scientist).get(url).content.decode()
    assert "Generate a bias report" not in login(viewer).get(url).content.decode()


def test_the_form_asks_for_a_report_and_goes_to_its_page(login, scientist, version, keep):
    dataset = keep(applicants(biased=False))
    response = login(scientist).post(
        reverse("bias_report_new", args=VERSION_PAGE),
        {"dataset": dataset.pk, "y_true": "approved", "y_pred": "predicted",
         "sensitive": ["sex", ""], "pos_label": "1"},
    )  # fmt: skip
    report = BiasReport.objects.get()
    assert response.status_code == 302
    assert response.url == report_url(report)
    assert (report.state, report.sensitive, report.y_pred) == ("queued", ["sex"], "predicted")


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"sensitive": ["", ""]}, "name one or two sensitive columns"),
        ({"y_true": "nope"}, "the table has no column &#x27;nope&#x27;"),
        ({"dataset": "x"}, "Choose a table from the list."),
        ({"dataset": "999"}, "Choose a table from the list."),
        ({"y_pred": ""}, "no input signature"),
    ],
)
def test_a_bad_form_shows_why_and_queues_nothing(login, scientist, version, keep, changes, shown):
    dataset = keep(applicants(biased=False))
    data = {"dataset": dataset.pk, "y_true": "approved", "y_pred": "predicted",
            "sensitive": ["sex"], "pos_label": "1", **changes}  # fmt: skip
    response = login(scientist).post(reverse("bias_report_new", args=VERSION_PAGE), data)
    assert response.status_code == 400
    assert shown in response.content.decode()
    assert not BiasReport.objects.exists()


def test_the_form_refuses_a_table_of_another_project(
    login, admin_user, owner, scientist, version, keep
):
    from tests.factories import make_project

    other = make_project(admin=admin_user, owner=owner, slug="fraud", name="Fraud")
    dataset = keep(applicants(biased=False), in_project=(other, admin_user))
    data = {"dataset": dataset.pk, "y_true": "approved", "y_pred": "predicted",
            "sensitive": ["sex"]}  # fmt: skip
    response = login(scientist).post(reverse("bias_report_new", args=VERSION_PAGE), data)
    assert response.status_code == 400
    assert "a table kept in this project" in response.content.decode()
    assert not BiasReport.objects.exists()


def test_those_who_may_not_ask_are_refused(login, viewer, version, keep):
    dataset = keep(applicants(biased=False))
    data = {"dataset": dataset.pk, "y_true": "approved", "sensitive": ["sex"]}
    response = login(viewer).post(reverse("bias_report_new", args=VERSION_PAGE), data)
    assert response.status_code == 403
    assert not BiasReport.objects.exists()


def test_choosing_a_table_answers_its_columns(login, scientist, version, keep):
    keep(applicants(biased=False))
    other = keep({"region": ["n", "s"] * 20, "outcome": [0, 1] * 20}, name="regions")
    response = login(scientist).get(
        reverse("bias_report_new", args=VERSION_PAGE),
        {"dataset": other.pk},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert "<option>region</option>" in body
    assert "sex" not in body


def test_the_version_page_and_card_link_the_latest_verdict(login, scientist, version, keep):
    biased = keep(applicants(biased=True))
    report = services.generate_bias_report(report_id=ask(scientist, version, biased).pk)
    ask(scientist, version, keep(applicants(biased=False), name="queued"))  # not finished
    client = login(scientist)
    page = client.get(reverse("model_version", args=VERSION_PAGE)).content.decode()
    assert "bias report fails" in page
    assert report_url(report) in page
    markdown = client.get(reverse("card_export", args=[*VERSION_PAGE, "md"])).content.decode()
    assert f"[report {report.pk}](http://testserver{report_url(report)}) fails" in markdown
    assert "demographic parity ratio" in markdown
    html = client.get(reverse("card_export", args=[*VERSION_PAGE, "html"])).content.decode()
    assert f'<a href="http://testserver{report_url(report)}">report {report.pk}</a> fails' in html


@pytest.mark.parametrize("reports", [1, 12])
def test_the_pages_do_not_query_more_with_more_reports(
    login, scientist, version, keep, reports, django_assert_max_num_queries
):
    dataset = keep(applicants(300, biased=True))
    for _ in range(reports):
        last = ask(scientist, version, dataset)
    services.generate_bias_report(report_id=last.pk)
    client = login(scientist)
    with django_assert_max_num_queries(22):
        assert client.get(reverse("model_version", args=VERSION_PAGE)).status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get(reverse("fairness_policy", args=["credit-risk"])).status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get(report_url(last)).status_code == 200


def test_everyone_in_the_project_reads_the_policy(login, project, viewer, outsider):
    url = reverse("fairness_policy", args=["credit-risk"])
    body = login(viewer).get(url).content.decode()
    assert 'value="0.8"' in body
    assert "Save the policy" not in body
    assert login(viewer).post(url, {"min_group_size": "5"}).status_code == 403
    assert login(outsider).get(url).status_code == 404


def test_a_product_owner_sets_the_policy(login, owner, project):
    url = reverse("fairness_policy", args=["credit-risk"])
    response = login(owner).post(
        url,
        {"demographic_parity_ratio_min": "0.9", "equal_opportunity_difference_max": "0.1",
         "min_group_size": "50", "fail_on_small_groups": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    policy = FairnessPolicy.objects.get(project=project)
    assert policy.min_group_size == 50
    assert policy.limits["demographic_parity_ratio_min"] == 0.9
    assert policy.limits["demographic_parity_difference_max"] is None
    assert policy.limits["fail_on_small_groups"] is True
    assert AuditEvent.objects.filter(action="fairness.policy_saved").count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "shown"),
    [
        ({"demographic_parity_ratio_min": "lots"}, "demographic_parity_ratio_min", "A number"),
        ({"demographic_parity_ratio_min": "1.5"}, "demographic_parity_ratio_min", "between 0"),
        ({"equalized_odds_ratio_min": "-0.1"}, "equalized_odds_ratio_min", "between 0"),
        ({"min_group_size": "0"}, "min_group_size", "A whole number"),
        ({"min_group_size": "few"}, "min_group_size", "A whole number"),
    ],
)
def test_a_bad_policy_shows_the_error_by_its_field(login, owner, project, changes, field, shown):
    data = {"demographic_parity_ratio_min": "0.8", "min_group_size": "30", **changes}
    response = login(owner).post(reverse("fairness_policy", args=["credit-risk"]), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert f'id="{field}-error"' in body
    assert shown in body.split(f'id="{field}-error"', 1)[1][:200]
    assert not FairnessPolicy.objects.exists()
