import threading

import pytest
from django.db import IntegrityError, InternalError, OperationalError, connection, transaction
from django.db.utils import ProgrammingError

from governance.access import services
from governance.access.models import Project
from governance.audit.chain import GENESIS, event_hash
from governance.audit.errors import ChainUnavailable
from governance.audit.models import ActorKind, AuditEvent, ChainHead
from governance.audit.services import SystemActor, fields_of, record
from tests.factories import UserFactory

REFUSED = (IntegrityError, InternalError, OperationalError, ProgrammingError)


def test_events_link_into_a_chain_from_genesis(db):
    first = record(actor=SystemActor("test"), action="test.first")
    second = record(actor=SystemActor("test"), action="test.second", payload={"n": 2})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    stored = AuditEvent.objects.get(seq=2)
    assert event_hash(fields_of(stored)) == stored.hash
    head = ChainHead.objects.get()
    assert (head.seq, head.hash) == (2, second.hash)


def test_payload_is_kept_as_canonical_json(db):
    event = record(actor=None, action="test.payload", payload={"b": 1, "a": ["é", None]})
    assert AuditEvent.objects.get(seq=event.seq).payload == '{"a":["é",null],"b":1}'


def test_text_that_databases_cannot_store_is_made_safe(db):
    event = record(actor=SystemActor("bad\x00name"), action="test.text", payload={"x": "\ud800"})
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.actor_name == "bad\ufffdname"
    assert event_hash(fields_of(stored)) == stored.hash


def test_a_change_that_rolls_back_takes_its_event_with_it(project, owner, outsider):
    before = AuditEvent.objects.count()

    def add_then_fail() -> None:
        with transaction.atomic():
            services.add_member(actor=owner, project=project, user=outsider, role="viewer")
            raise RuntimeError("the rest of the work failed")

    with pytest.raises(RuntimeError):
        add_then_fail()
    assert AuditEvent.objects.count() == before
    assert ChainHead.objects.get().seq == before


def test_a_service_whose_event_cannot_be_written_changes_nothing(admin_user):
    ChainHead.objects.all().delete()
    with pytest.raises(ChainUnavailable):
        services.create_project(actor=admin_user, slug="fraud", name="Fraud")
    assert not Project.objects.exists()
    assert not AuditEvent.objects.exists()


def test_deleting_a_person_keeps_their_events_readable(project, admin_user, outsider):
    services.add_member(actor=admin_user, project=project, user=outsider, role="viewer")
    event = AuditEvent.objects.filter(action="membership.added").latest("seq")
    outsider.delete()
    event.refresh_from_db()
    assert "oscar" in event.payload
    assert event.actor_name == "ada"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET payload = '{}'",
        "UPDATE audit_auditevent SET actor_name = 'someone else' WHERE seq = 1",
        "DELETE FROM audit_auditevent WHERE seq = 1",
        "DELETE FROM audit_auditevent",
    ],
)
def test_the_database_refuses_to_change_events(project, statement):
    before = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash", "payload"))
    with (
        pytest.raises(REFUSED, match="append-only"),
        transaction.atomic(),
        connection.cursor() as c,
    ):
        c.execute(statement)
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "hash", "payload")) == before


def test_postgres_refuses_truncate(project, needs_postgres):
    with (
        pytest.raises(REFUSED, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_make_one_chain_without_gaps(needs_postgres):
    writers, each = 8, 25
    barrier = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(each):
                with transaction.atomic():
                    record(
                        actor=SystemActor(f"writer-{n}"), action="test.concurrent", payload={"i": i}
                    )
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    events = list(AuditEvent.objects.order_by("seq"))
    assert [event.seq for event in events] == list(range(1, writers * each + 1))
    previous = GENESIS
    for event in events:
        assert event.prev_hash == previous
        assert event_hash(fields_of(event)) == event.hash
        previous = event.hash


def test_token_requests_record_the_token_and_the_request(project, scientist, client):
    from tests.access.test_api import bearer

    api, _ = bearer(scientist)
    api.post(
        "/api/v1/projects/credit-risk/members/",
        {"username": "nobody", "role": "viewer"},
        format="json",
    )  # refused: no event
    owner_api, _ = bearer(project.memberships.get(role="product_owner").user)
    outsider = UserFactory(username="zed")
    response = owner_api.post(
        "/api/v1/projects/credit-risk/members/",
        {"username": outsider.username, "role": "viewer"},
        format="json",
        HTTP_USER_AGENT="ci-bot/1.0",
        HTTP_X_REQUEST_ID="build-4242-step-7",
    )
    assert response["X-Request-ID"] == "build-4242-step-7"
    event = AuditEvent.objects.latest("seq")
    assert event.action == "membership.added"
    assert event.actor_kind == ActorKind.TOKEN
    assert event.actor_token.startswith("qrm_")
    assert (event.ip, event.user_agent, event.request_id) == (
        "127.0.0.1",
        "ci-bot/1.0",
        "build-4242-step-7",
    )


def test_page_requests_get_a_request_id_when_they_bring_none(login, project, owner, outsider):
    response = login(owner).post(
        f"/projects/{project.slug}/members/", {"username": "oscar", "role": "viewer"}
    )
    event = AuditEvent.objects.latest("seq")
    assert event.actor_kind == ActorKind.USER
    assert event.request_id == response["X-Request-ID"]
    assert len(event.request_id) == 32


def test_admin_shows_the_trail_read_only(login, project, admin_user):
    client = login(admin_user)
    listing = client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200
    assert b"project.created" in listing.content
    detail = client.get("/admin/audit/auditevent/1/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert client.get("/admin/audit/auditevent/1/delete/").status_code == 403


@pytest.mark.parametrize("action", ["Project.Created", "created", "project.created;drop", ""])
def test_an_action_that_is_not_dotted_words_is_a_programming_error(db, action):
    with pytest.raises(ValueError, match="dotted"):
        record(actor=None, action=action)
    assert not AuditEvent.objects.exists()


def test_a_forged_forwarded_address_is_not_recorded(client, owner, settings):
    settings.BEHIND_PROXY = True
    client.post(
        "/login/",
        {"username": "olivia", "password": "wrong"},
        HTTP_X_FORWARDED_FOR='"><script>, 10.0.0.1',
    )
    assert AuditEvent.objects.get().ip == ""
