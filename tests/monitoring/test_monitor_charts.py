"""The monitor page shows why a feature drifted: its distributions against the reference, and
each statistic over the checks with the threshold that decides."""

import json
import re

import pandas as pd
import pytest
from django.urls import reverse

from governance.access.errors import ProjectNotFound
from governance.monitoring import services, stats
from governance.monitoring.models import DriftCheck
from governance.notify.models import Notification
from tests.monitoring.test_monitors import frame, send


def check(monitor, who, data):
    batch = send(monitor, who, data)
    return services.run_drift_check(check_id=DriftCheck.objects.get(batch=batch).pk)


def figures(response) -> dict:
    """The Plotly figures the page embeds, by the id of the element they are drawn in."""
    found = re.findall(
        r'<script type="application/json" class="chart" data-target="([^"]+)">(.*?)</script>',
        response.content.decode(),
        flags=re.S,
    )
    return {target: json.loads(data) for target, data in found}


def test_categories_are_counted_on_both_sides_most_frequent_first():
    reference = pd.DataFrame({"c": ["a", "b", "b", None, "c"]})
    current = pd.DataFrame({"c": ["a", "d", "d", "b", "b"]})
    feature = stats.drift(reference, current).features["c"]
    assert feature.top_categories == ["b", "a", "d", "c"]
    assert feature.reference_top_counts == [2, 1, 0, 1]
    assert feature.current_top_counts == [2, 1, 2, 0]


def test_the_category_list_for_charts_is_capped_like_the_other_lists():
    reference = pd.DataFrame({"c": [f"k{i}" for i in range(30)]})
    feature = stats.drift(reference, reference, max_listed=5).features["c"]
    assert len(feature.top_categories) == len(feature.current_top_counts) == 5


def test_the_first_drifted_feature_is_explained_with_its_bins_and_history(
    login,
    monitor,
    scientist,
    viewer,
):
    check(monitor, scientist, frame(2000, seed=20))
    latest = check(monitor, scientist, frame(2000, shift=1.5, seed=21))

    response = login(viewer).get(reverse("monitor", args=["credit-risk", monitor.pk]))

    assert response.context["chosen"].feature == "age"
    charts = figures(response)
    reference, current = charts["distribution"]["data"]
    bins = latest.result["features"]["age"]["reference_bins"]
    assert reference["y"] == [n / sum(bins) for n in bins]
    assert len(current["x"]) == len(bins)
    assert sum(current["y"]) > 0.999
    history = charts["history"]
    psi_line = history["data"][0]
    assert len(psi_line["y"]) == 2, "one point per check"
    assert psi_line["y"][1] > 0.2 > psi_line["y"][0]
    limits = [shape["y0"] for shape in history["layout"]["shapes"]]
    assert limits == [0.2, 0.1, 0.01]  # PSI, KS statistic, p-value


def test_a_feature_chosen_by_name_is_shown_with_its_categories(
    login,
    monitor,
    scientist,
):
    check(monitor, scientist, frame(2000, shift=1.5, seed=22))
    url = reverse("monitor", args=["credit-risk", monitor.pk])
    response = login(scientist).get(url, {"feature": "region"})
    assert response.context["chosen"].feature == "region"
    reference, _ = figures(response)["distribution"]["data"]
    assert sorted(reference["x"]) == ["east", "north", "south"]


def test_thresholds_of_the_monitor_draw_the_lines(login, monitor, scientist):
    monitor.thresholds = {"psi": 0.3, "p_value": 0.001}
    monitor.save()
    check(monitor, scientist, frame(500, shift=1.5, seed=23))
    response = login(scientist).get(reverse("monitor", args=["credit-risk", monitor.pk]))
    limits = [s["y0"] for s in figures(response)["history"]["layout"]["shapes"]]
    assert limits == [0.3, 0.1, 0.001]


def test_an_unknown_feature_falls_back_to_the_first(login, monitor, scientist):
    check(monitor, scientist, frame(500, shift=1.5, seed=24))
    url = reverse("monitor", args=["credit-risk", monitor.pk])
    response = login(scientist).get(url, {"feature": "no such column"})
    assert response.status_code == 200
    assert response.context["chosen"].feature == "age"


def test_a_monitor_without_checks_draws_nothing(login, monitor, scientist):
    response = login(scientist).get(reverse("monitor", args=["credit-risk", monitor.pk]))
    assert figures(response) == {}
    assert "chosen" not in response.context


def test_the_page_reads_the_same_number_of_rows_however_many_checks(
    login,
    monitor,
    scientist,
    django_assert_max_num_queries,
):
    client = login(scientist)
    url = reverse("monitor", args=["credit-risk", monitor.pk])
    check(monitor, scientist, frame(300, shift=1.5, seed=25))
    with django_assert_max_num_queries(100) as few:
        client.get(url)
    for seed in range(26, 31):
        check(monitor, scientist, frame(300, shift=1.5, seed=seed))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_a_product_owner_who_watches_is_told_of_the_next_alert(
    login,
    monitor,
    scientist,
    owner,
):
    client = login(owner)
    url = reverse("monitor_watch", args=["credit-risk", monitor.pk])
    assert client.post(url, {"on": "1"}).status_code == 302
    check(monitor, scientist, frame(1000, shift=1.5, seed=32))
    assert Notification.objects.filter(recipient=owner, kind="drift.alert").count() == 1

    client.post(url, {"on": "0"})
    monitor.refresh_from_db()
    assert owner not in monitor.subscribers.all()


def test_an_outsider_cannot_watch_a_monitor(login, monitor, outsider):
    url = reverse("monitor_watch", args=["credit-risk", monitor.pk])
    assert login(outsider).post(url, {"on": "1"}).status_code == 404
    assert outsider not in monitor.subscribers.all()


def test_watching_asks_only_to_see_the_project(monitor, viewer, outsider):
    assert services.watch_monitor(actor=viewer, monitor=monitor) is True
    with pytest.raises(ProjectNotFound):
        services.watch_monitor(actor=outsider, monitor=monitor)
