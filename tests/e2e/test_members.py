"""A demo person logs in, switches project and sees the members; an outsider gets 404."""

import re

import pytest
from playwright.sync_api import expect

from governance.access.roles import Role
from tests.conftest import PASSWORD
from tests.factories import AdminFactory, UserFactory, make_project

pytestmark = pytest.mark.browser


@pytest.fixture
def team(transactional_db):
    admin = AdminFactory(username="ada")
    priya = UserFactory(username="priya", first_name="Priya", last_name="Patel")
    sam = UserFactory(username="sam", first_name="Sam", last_name="Okafor")
    val = UserFactory(username="val", first_name="Val", last_name="Romero")
    make_project(
        admin=admin,
        owner=priya,
        slug="credit-risk",
        name="Credit risk scoring",
        members={sam: Role.DATA_SCIENTIST, val: Role.VIEWER},
    )
    make_project(
        admin=admin,
        owner=priya,
        slug="churn",
        name="Customer churn",
        members={sam: Role.ML_ENGINEER},
    )


def log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()


def test_member_logs_in_switches_project_and_sees_the_members(page, team):
    log_in(page, "sam")
    page.get_by_role("link", name=re.compile("Credit risk scoring")).click()
    expect(page.get_by_role("region", name="Your role")).to_contain_text("Data scientist")

    page.get_by_role("navigation", name="Credit risk scoring").get_by_role(
        "link", name="Members"
    ).click()
    page.get_by_label("Switch project").click()
    page.get_by_role("link", name=re.compile("Customer churn")).click()

    expect(page).to_have_url(re.compile(r"/projects/churn/members/$"))
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="priya")).to_contain_text("Product owner")
    expect(rows.filter(has_text="sam")).to_contain_text("ML engineer")


def test_project_switcher_works_with_the_keyboard(page, team):
    log_in(page, "sam")
    page.goto("/projects/credit-risk/")
    page.get_by_label("Switch project").focus()
    page.keyboard.press("Enter")
    churn = page.get_by_role("link", name=re.compile("Customer churn"))
    expect(churn).to_be_visible()
    churn.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/projects/churn/$"))


def test_product_owner_changes_a_role_in_place(page, team):
    log_in(page, "priya")
    page.goto("/projects/credit-risk/members/")
    row = page.locator("tbody tr", has_text="val")
    row.get_by_label("Role of val").select_option("auditor")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("tbody tr", has_text="val").get_by_label("Role of val")).to_have_value(
        "auditor"
    )
    page.reload()
    expect(page.locator("tbody tr", has_text="val").get_by_label("Role of val")).to_have_value(
        "auditor"
    )


def test_outsider_gets_not_found_for_a_project_they_are_not_in(page, team):
    log_in(page, "val")
    expect(page.get_by_role("link", name=re.compile("Customer churn"))).to_have_count(0)
    response = page.goto("/projects/churn/members/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("Customer churn")).to_have_count(0)
