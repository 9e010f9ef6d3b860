import pytest
from django.core.management import call_command

from governance.access.errors import NotAllowed
from governance.audit import services
from governance.audit.errors import InvalidCheckpoint
from governance.audit.models import AuditEvent, VerificationRun
from governance.audit.tasks import send_checkpoint, verify_chain, verify_chain_nightly
from tests.audit.test_verification import triggers_dropped


def test_auditor_queues_a_verification_that_a_worker_carries_out(
    project, auditor, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        run = services.request_verification(actor=auditor)
    assert run.state == VerificationRun.State.QUEUED
    assert len(queued) == 1
    verify_chain(run_id=run.pk)  # the task body, as the worker runs it
    run.refresh_from_db()
    assert run.state == VerificationRun.State.PASSED
    assert run.percent == 100
    event = AuditEvent.objects.latest("seq")
    assert event.action == "audit.verified"
    assert f'"head":"{run.checkpoint}"' in event.payload


def test_each_verification_mails_the_checkpoint_to_the_auditors(
    project, auditor, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        run = services.verify_now(actor=auditor, trigger=VerificationRun.Trigger.PAGE)
    assert len(queued) == 1
    send_checkpoint(run_id=run.pk)
    run.refresh_from_db()
    (email,) = mailoutbox
    assert email.to == [auditor.email]
    assert run.checkpoint in email.body
    assert "intact" in email.subject


def test_a_finished_run_is_not_walked_again(project, auditor):
    run = services.verify_now(actor=auditor, trigger=VerificationRun.Trigger.PAGE)
    events = AuditEvent.objects.count()
    services.run_verification(run_id=run.pk)  # delivered twice
    assert AuditEvent.objects.count() == events


def test_a_broken_trail_fails_the_run_and_names_the_event(project, auditor):
    with triggers_dropped() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_name = 'x' WHERE seq = 3")
    run = services.verify_now(actor=auditor, trigger=VerificationRun.Trigger.PAGE)
    assert (run.state, run.break_seq, run.break_kind) == ("failed", 3, "changed")
    assert AuditEvent.objects.latest("seq").action == "audit.verification_failed"


def test_viewer_may_not_verify(project, viewer):
    with pytest.raises(NotAllowed):
        services.request_verification(actor=viewer)
    assert not VerificationRun.objects.exists()


@pytest.mark.parametrize("text", ["12", "x:abc", "0:" + "a" * 64, "5:" + "G" * 64, "5:abc"])
def test_a_malformed_checkpoint_is_refused(project, auditor, text):
    with pytest.raises(InvalidCheckpoint):
        services.request_verification(actor=auditor, checkpoint=text)
    assert not VerificationRun.objects.exists()


def test_the_nightly_task_verifies_as_the_system(project):
    verify_chain_nightly()
    run = VerificationRun.objects.get()
    assert (run.trigger, run.state) == ("schedule", "passed")
    assert AuditEvent.objects.latest("seq").actor_name == "verification (Nightly schedule)"


def test_the_nightly_schedule_is_in_the_database(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="audit.verify_chain_nightly")
    assert task.enabled
    assert (task.crontab.hour, task.crontab.minute) == ("2", "30")


# The command


def test_command_exits_0_on_an_intact_trail_and_prints_the_checkpoint(project, capsys):
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "intact" in out
    run = VerificationRun.objects.get()
    assert f"checkpoint {run.checkpoint}" in out


def test_command_exits_1_naming_the_first_broken_event(project, capsys):
    with triggers_dropped() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 2")
    with pytest.raises(SystemExit) as exit_:
        call_command("audit_verify")
    assert exit_.value.code == 1
    assert "broken at #2 (missing)" in capsys.readouterr().err


def test_command_checks_an_outside_checkpoint(project, capsys):
    head = AuditEvent.objects.latest("seq")
    with pytest.raises(SystemExit):
        call_command("audit_verify", "--no-record", "--checkpoint", f"{head.seq + 5}:{'a' * 64}")
    assert "(truncated)" in capsys.readouterr().err


def test_command_refuses_a_malformed_checkpoint(project):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="SEQ:HASH"):
        call_command("audit_verify", "--checkpoint", "yesterday")
