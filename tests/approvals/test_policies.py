import pytest

from governance.access.errors import NotAllowed
from governance.access.roles import Role
from governance.approvals import services
from governance.approvals.errors import InvalidGate, InvalidPolicy, StalePolicy
from governance.approvals.models import ApprovalPolicy, PolicyVersion
from governance.audit.models import AuditEvent

PO, MLE = Role.PRODUCT_OWNER, Role.ML_ENGINEER


def save(actor, project, **changes):
    options = {
        "stage": "production",
        "required": {PO: 1, MLE: 1},
        "gates_": [{"kind": "metric", "condition": "accuracy >= 0.9"}],
    }
    return services.save_policy(actor=actor, project=project, **{**options, **changes})


def test_product_owner_saves_a_policy_and_each_edit_is_a_version(project, owner):
    first = save(owner, project)
    second = save(owner, project, quorum=3, note="a third pair of eyes", based_on=1)

    assert (first.number, second.number) == (1, 2)
    assert first.quorum == 2  # the slots added up, by default
    policy = ApprovalPolicy.objects.get(project=project, stage="production")
    assert policy.current == second
    event = AuditEvent.objects.filter(action="policy.saved").order_by("-seq").first()
    assert event.data["before"]["quorum"] == 2
    assert event.data["after"]["quorum"] == 3


def test_saving_the_same_policy_again_makes_no_version(project, owner):
    save(owner, project)
    events = AuditEvent.objects.count()

    again = save(owner, project)

    assert again.number == 1
    assert PolicyVersion.objects.count() == 1
    assert AuditEvent.objects.count() == events


def test_an_edit_based_on_an_old_version_is_refused(project, owner, admin_user):
    save(owner, project)
    save(admin_user, project, quorum=3, based_on=1)

    with pytest.raises(StalePolicy):
        save(owner, project, open_days=3, based_on=1)
    assert PolicyVersion.objects.count() == 2


@pytest.mark.parametrize("who", ["scientist", "engineer", "auditor", "viewer"])
def test_only_product_owners_and_admins_edit_policies(project, request, who):
    with pytest.raises(NotAllowed):
        save(request.getfixturevalue(who), project)
    assert not ApprovalPolicy.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"stage": "Production"}, "stage"),
        ({"stage": "latest"}, "stage"),
        ({"stage": "v2"}, "stage"),
        ({"stage": ""}, "stage"),
        ({"required": {}}, "required"),
        ({"required": {"auditor": 1}}, "required"),
        ({"required": {"boss": 1}}, "required"),
        ({"required": {PO: -1}}, "required"),
        ({"required": {PO: 11}}, "required"),
        ({"required": {PO: "1"}}, "required"),
        ({"required": {PO: 0}}, "required"),
        ({"quorum": 1}, "quorum"),
        ({"quorum": 21}, "quorum"),
        ({"open_days": 0}, "open_days"),
        ({"open_days": 366}, "open_days"),
    ],
)
def test_a_bad_policy_is_refused_with_the_field(project, owner, changes, field):
    with pytest.raises(InvalidPolicy) as refused:
        save(owner, project, **changes)
    assert field in refused.value.fields
    assert not ApprovalPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action="policy.saved").exists()


def test_a_gate_expression_that_does_not_parse_is_refused_with_its_position(project, owner):
    with pytest.raises(InvalidGate) as refused:
        save(owner, project, gates_=[{"kind": "metric", "condition": "accuracy >= high"}])

    assert "character 13" in refused.value.message
    assert refused.value.fields["position"] == ["12"]
    assert not PolicyVersion.objects.exists()


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ([{"kind": "astrology"}], "unknown kind"),
        ([{"condition": "a > 1"}], "needs a kind"),
        ({"kind": "metric"}, "a list"),
        ([{"kind": "metric"}], "needs a condition"),
        ([{"kind": "card_complete", "sections": 3}], "takes no settings"),
    ],
)
def test_bad_gates_are_refused(project, owner, gates, message):
    with pytest.raises(InvalidGate) as refused:
        save(owner, project, gates_=gates)
    assert message in refused.value.message
