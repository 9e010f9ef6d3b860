"""A data scientist compares three runs and opens a version's lineage."""

import re

import pytest
from playwright.sync_api import expect

from governance.access.roles import Role
from governance.registry import services
from tests.e2e.test_members import log_in
from tests.factories import AdminFactory, UserFactory, make_project

pytestmark = pytest.mark.browser


@pytest.fixture
def registry(transactional_db, tracking):
    admin = AdminFactory(username="ada")
    priya, sam = UserFactory(username="priya"), UserFactory(username="sam")
    make_project(
        admin=admin,
        owner=priya,
        slug="credit-risk",
        name="Credit risk scoring",
        members={sam: Role.DATA_SCIENTIST},
    )
    experiment = tracking.experiment("credit/scoring", project="credit-risk")
    runs = [
        tracking.run(
            experiment,
            f"gbm-{depth}",
            params={"max_depth": depth, "learning_rate": 0.1},
            metrics={"auc": [0.7, 0.75 + depth / 100], "accuracy": 0.8 + depth / 100},
            dataset=("applicants", "c0ffee12"),
        )
        for depth in (2, 3, 4)
    ]
    tracking.model("credit-scoring", project="credit-risk")
    tracking.version("credit-scoring", runs[2])
    services.sync_mlflow(trigger="test")
    return runs


def test_data_scientist_compares_three_runs_and_opens_a_lineage(page, registry):
    log_in(page, "sam")
    page.goto("/projects/credit-risk/experiments/")
    page.get_by_role("link", name="credit/scoring").click()
    for name in ("gbm-2", "gbm-3", "gbm-4"):
        page.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name="Compare selected").click()

    expect(page).to_have_url(re.compile(r"/compare/"))
    differing = page.locator("tr.differs")
    expect(differing).to_have_count(1)
    expect(differing).to_contain_text("max_depth")
    expect(page.locator("#bars .main-svg").first).to_be_visible()
    expect(page.locator("#parallel .main-svg").first).to_be_visible()

    page.get_by_role("link", name="Models").click()
    page.get_by_role("link", name="credit-scoring").click()
    page.get_by_role("link", name="v1").click()
    lineage = page.get_by_role("group", name=re.compile("Lineage"))
    expect(lineage).to_contain_text("applicants")
    expect(lineage).to_contain_text("gbm-4")
    expect(lineage).to_contain_text("credit-scoring v1")
    expect(page.get_by_text("card incomplete")).to_be_visible()
