"""The release evidence bundle: what it holds, who may download it, and `verify_bundle`, which
checks one offline and names whatever was changed."""

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Q
from django.urls import reverse
from rest_framework.test import APIClient

from governance.approvals import bundle, services
from governance.approvals.evidence import evidence_hash
from governance.approvals.models import ApprovalRequest
from governance.audit import services as audit
from governance.audit.chain import event_hash
from governance.audit.models import AuditEvent
from governance.registry import services as registry
from governance.registry.models import ModelVersion, RegisteredModel
from tests.approvals.test_api import bearer
from tests.factories import make_project

ROOT = Path(__file__).resolve().parents[2]
CORE = {
    "request.json",
    "policy.json",
    "gates.json",
    "decisions.json",
    "comments.json",
    "model_card.md",
    "model_card.json",
    "audit_events.jsonl",
}
# What the fairness and monitoring areas attach to every bundle.
PARTS = {"bias_report": ["fairness/bias_report.json"], "drift": ["monitoring/drift_status.json"]}
PART_FILES = {name for names in PARTS.values() for name in names}


@pytest.fixture
def approved(opened, owner, engineer, scientist, viewer, version) -> ApprovalRequest:
    """The request approved by the product owner and the ML engineer, after a question and
    its answer, with the card written since it opened."""
    question = services.add_comment(actor=viewer, approval=opened, body="Why now?")
    services.add_comment(actor=scientist, approval=opened, body="Q3 data.", parent=question)
    registry.edit_model_card(
        actor=scientist, version=version, sections={"intended_use": "Scoring credit requests."}
    )
    services.decide(actor=owner, approval=opened, verdict="approve")
    services.decide(actor=engineer, approval=opened, verdict="approve", comment="Benchmarked.")
    return ApprovalRequest.objects.get(pk=opened.pk)


def made(approval, actor, tmp_path) -> Path:
    exported = services.export_bundle(actor=actor, approval=approval)
    path = tmp_path / exported.filename
    path.write_bytes(exported.content)
    return path


def files_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewritten(path: Path, change, *, resum: tuple[str, ...] = ()) -> Path:
    """The bundle as someone who changed it would leave it: `change` edits the files, and the
    manifest's sums of `resum` are brought in line with the edit."""
    files = change(files_of(path))
    manifest = json.loads(files["manifest.json"])
    for name in resum:
        manifest["files"][name] = {
            "sha256": hashlib.sha256(files[name]).hexdigest(),
            "size": len(files[name]),
        }
    files["manifest.json"] = json.dumps(manifest).encode()
    tampered = path.with_name("tampered.zip")
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return tampered


def edit_json(name: str, edit):
    def change(files: dict[str, bytes]) -> dict[str, bytes]:
        value = json.loads(files[name])
        edit(value)
        return {**files, name: json.dumps(value).encode()}

    return change


def edit_event(action: str, edit):
    """Change the first event of `action` in audit_events.jsonl."""

    def change(files: dict[str, bytes]) -> dict[str, bytes]:
        events = [json.loads(line) for line in files["audit_events.jsonl"].splitlines()]
        edit(next(e for e in events if e["action"] == action))
        lines = "".join(json.dumps(e) + "\n" for e in events)
        return {**files, "audit_events.jsonl": lines.encode()}

    return change


def rehash(event: dict) -> None:
    event["hash"] = event_hash({k: v for k, v in event.items() if k != "hash"})


@pytest.fixture
def verify_offline(capsys, django_db_blocker):
    """Run `verify_bundle` with every database connection refused: (exit code, output)."""

    def run(path: Path) -> tuple[int, str]:
        with django_db_blocker.block():
            try:
                call_command("verify_bundle", str(path))
                code = 0
            except SystemExit as exit_:
                code = exit_.code
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


# What the bundle holds


def test_the_bundle_holds_the_request_its_history_and_a_manifest_of_digests(
    approved, auditor, tmp_path
):
    files = files_of(made(approved, auditor, tmp_path))

    assert set(files) == {*CORE, *PART_FILES, "manifest.json"}
    manifest = json.loads(files["manifest.json"])
    assert manifest["format"] == "quorum-release-bundle"
    assert manifest["format_version"] == 1
    assert manifest["request"] == approved.pk
    assert (manifest["model"], manifest["version"], manifest["stage"]) == (
        "credit-scoring",
        1,
        "production",
    )
    assert manifest["made_by"] == "alex"
    assert manifest["made_at"]
    assert manifest["quorum_version"] == "0.1.0"
    assert manifest["model_card_revision"] == 1
    assert manifest["parts"] == PARTS
    assert set(manifest["files"]) == CORE | PART_FILES
    for name, entry in manifest["files"].items():
        assert entry == {
            "sha256": hashlib.sha256(files[name]).hexdigest(),
            "size": len(files[name]),
        }

    request = json.loads(files["request.json"])
    assert request["id"] == approved.pk
    assert request["state"] == "approved"
    assert request["requested_by"] == "sam"
    assert request["note"] == "ok"
    assert request["alias"]["state"] == "pending"
    assert request["evidence"] == approved.evidence
    assert request["evidence_sha256"] == evidence_hash(request["evidence"])

    policy = json.loads(files["policy.json"])
    assert policy["number"] == 1
    assert policy["required"] == {"product_owner": 1, "ml_engineer": 1}
    assert policy["quorum"] == 2
    assert policy["gates"] == [{"kind": "metric", "condition": "accuracy >= 0.9"}]
    assert policy["created_by"] == "olivia"

    gates = json.loads(files["gates.json"])
    assert [g["outcome"] for g in gates["results"]] == ["pass"]
    assert gates["checked_at"]

    decisions = json.loads(files["decisions.json"])
    assert [(d["approver"], d["role"], d["verdict"]) for d in decisions] == [
        ("olivia", "product_owner", "approve"),
        ("mei", "ml_engineer", "approve"),
    ]
    assert decisions[1]["comment"] == "Benchmarked."

    question, answer = json.loads(files["comments.json"])
    assert (question["author"], question["body"], question["parent"]) == ("val", "Why now?", None)
    assert (answer["author"], answer["parent"]) == ("sam", question["id"])

    assert files["model_card.md"].decode().startswith("# Model card: credit-scoring v1\n")
    assert "Revision 1." in files["model_card.md"].decode()
    card = json.loads(files["model_card.json"])
    assert card["revision"] == 1
    assert card["sections"]["intended_use"] == "Scoring credit requests."


def test_the_audit_events_are_those_about_the_request_and_its_version_with_their_hashes(
    approved, auditor, tmp_path
):
    files = files_of(made(approved, auditor, tmp_path))
    events = [json.loads(line) for line in files["audit_events.jsonl"].splitlines()]
    through = json.loads(files["manifest.json"])["audit_through_seq"]

    # Up to the head as the bundle began: its own export event comes after.
    assert AuditEvent.objects.get(seq=through + 1).action == "approval.bundle_exported"
    about = AuditEvent.objects.filter(
        Q(target_kind="approvalrequest", target_id=str(approved.pk))
        | Q(target_kind="modelversion", target_id="credit-scoring/1")
        | Q(action="comment.added"),
        seq__lte=through,
    )
    assert [e["seq"] for e in events] == sorted(about.values_list("seq", flat=True))
    actions = [e["action"] for e in events]
    assert actions[0] == "model_version.registered"
    assert {"approval.opened", "comment.added", "approval.decided", "approval.approved"} <= set(
        actions
    )
    stored = AuditEvent.objects.get(seq=events[-1]["seq"])
    assert events[-1]["hash"] == stored.hash
    assert events[-1]["prev_hash"] == stored.prev_hash
    assert all(event_hash({k: v for k, v in e.items() if k != "hash"}) == e["hash"] for e in events)


def test_without_a_verification_the_manifest_says_there_is_no_checkpoint(opened, viewer, tmp_path):
    files = files_of(made(opened, viewer, tmp_path))
    manifest = json.loads(files["manifest.json"])
    assert "checkpoint.txt" not in files
    assert manifest["checkpoint"] is None
    assert "no checkpoint.txt" in manifest["notes"][0]


def test_the_latest_passed_verification_is_the_bundles_checkpoint(opened, auditor, tmp_path):
    audit.verify_now(actor=auditor, trigger="page")
    run = audit.verify_now(actor=auditor, trigger="page")

    files = files_of(made(opened, auditor, tmp_path))

    assert files["checkpoint.txt"].decode() == f"{run.checkpoint}\n"
    checkpoint = json.loads(files["manifest.json"])["checkpoint"]
    assert (checkpoint["seq"], checkpoint["hash"]) == (run.head_seq, run.head_hash)
    assert checkpoint["verification"] == run.pk


def test_making_a_bundle_is_on_the_audit_trail_with_the_manifests_digest(opened, viewer, tmp_path):
    path = made(opened, viewer, tmp_path)

    event = AuditEvent.objects.filter(action="approval.bundle_exported").get()
    manifest = files_of(path)["manifest.json"]
    assert event.actor_name == "val"
    assert (event.target_kind, event.target_id) == ("approvalrequest", str(opened.pk))
    assert event.data["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert event.data["bundle_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # The next bundle of the same request shows the first download.
    again = files_of(made(opened, viewer, tmp_path))["audit_events.jsonl"].decode()
    assert f'"seq":{event.seq},' in again


def test_outsiders_cannot_make_a_bundle_and_nothing_is_recorded(opened, outsider):
    from governance.access.errors import ProjectNotFound

    with pytest.raises(ProjectNotFound):
        services.export_bundle(actor=outsider, approval=opened)
    assert not AuditEvent.objects.filter(action="approval.bundle_exported").exists()


def test_the_file_name_keeps_the_model_name_safe(db):
    version = ModelVersion(model=RegisteredModel(name="team/credit scoring"), version=3)
    approval = ApprovalRequest(pk=7, version=version, stage="production")
    assert bundle.filename_of(approval) == "release-7-team-credit-scoring-v3-production.zip"


# Parts that other areas add


def test_a_registered_part_adds_its_files_listed_in_the_manifest(
    opened, viewer, tmp_path, monkeypatch, verify_offline
):
    monkeypatch.setattr(bundle, "PARTS", {})
    bundle.register_part("drift", lambda approval: {"drift/status.json": b'{"open": 0}'})

    path = made(opened, viewer, tmp_path)

    files = files_of(path)
    manifest = json.loads(files["manifest.json"])
    assert files["drift/status.json"] == b'{"open": 0}'
    assert manifest["parts"] == {"drift": ["drift/status.json"]}
    assert "drift/status.json" in manifest["files"]
    assert verify_offline(path)[0] == 0


def test_a_part_may_not_take_a_name_already_registered(monkeypatch):
    monkeypatch.setattr(bundle, "PARTS", {})
    bundle.register_part("bias", dict)
    with pytest.raises(ValueError, match="already registered"):
        bundle.register_part("bias", lambda approval: {})


@pytest.mark.parametrize(
    ("filename", "message"),
    [("request.json", "already in the bundle"), ("../escape.txt", "not a plain lower-case path")],
)
def test_a_part_may_not_overwrite_or_escape(opened, viewer, monkeypatch, filename, message):
    monkeypatch.setattr(bundle, "PARTS", {})
    bundle.register_part("rogue", lambda approval: {filename: b"x"})
    with pytest.raises(ValueError, match=message):
        services.export_bundle(actor=viewer, approval=opened)
    assert not AuditEvent.objects.filter(action="approval.bundle_exported").exists()


# Checking a bundle offline


def test_an_approved_requests_bundle_verifies(
    approved, auditor, tmp_path, verify_offline, django_db_blocker
):
    audit.verify_now(actor=auditor, trigger="page")
    path = made(approved, auditor, tmp_path)

    code, out = verify_offline(path)

    assert code == 0, out
    assert out.strip().endswith("bundle intact")
    assert "FAIL" not in out
    assert "skip" not in out
    assert out.count("ok    ") == len(bundle.CHECKS)
    manifest = files_of(path)["manifest.json"]
    assert f"manifest SHA-256 {hashlib.sha256(manifest).hexdigest()}" in out
    with django_db_blocker.block():
        assert bundle.verify(path) == []


def test_a_bundle_without_checkpoint_verifies_and_says_so(opened, viewer, tmp_path, verify_offline):
    code, out = verify_offline(made(opened, viewer, tmp_path))
    assert code == 0, out
    assert "skip  checkpoint.txt agrees with the manifest and the events: no checkpoint" in out


def test_verify_bundle_runs_where_no_database_can_be_reached(approved, auditor, tmp_path):
    """As an auditor would run it on their own machine: the only database it could reach does
    not exist, so any connection would fail the command."""
    good = made(approved, auditor, tmp_path)
    bad = rewritten(good, edit_json("request.json", lambda r: r.update(note="changed")))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("QUORUM_", "DJANGO_", "DATABASE_URL"))
    }
    env.update(
        QUORUM_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL="postgres://nobody:nothing@127.0.0.1:1/nowhere",
    )

    def run(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "verify_bundle", str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    intact = run(good)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "bundle intact" in intact.stdout
    broken = run(bad)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "request.json was changed" in broken.stdout
    assert "bundle NOT intact: 1 problem" in broken.stderr


def test_a_changed_byte_in_a_file_is_named(approved, viewer, tmp_path, verify_offline):
    def change(files):
        card = bytearray(files["model_card.md"])
        card[2] ^= 0x20
        return {**files, "model_card.md": bytes(card)}

    code, out = verify_offline(rewritten(made(approved, viewer, tmp_path), change))

    assert code == 1
    assert "FAIL  every file's SHA-256 and size match the manifest" in out
    assert "model_card.md was changed: its SHA-256 is" in out
    assert "bundle NOT intact: 1 problem" in out


def test_evidence_edited_with_its_manifest_sum_is_caught_by_its_hash(
    approved, viewer, tmp_path, verify_offline
):
    edit = edit_json("request.json", lambda r: r["evidence"]["run"]["metrics"].update(accuracy=1))
    path = rewritten(made(approved, viewer, tmp_path), edit, resum=("request.json",))

    code, out = verify_offline(path)

    assert code == 1
    assert "ok    every file's SHA-256 and size match the manifest" in out
    assert "the evidence in request.json was changed: it hashes to" in out


def test_evidence_edited_with_its_hash_and_sum_is_caught_by_the_audit_trail(
    approved, viewer, tmp_path, verify_offline
):
    def edit(request):
        request["evidence"]["run"]["metrics"]["accuracy"] = 1
        request["evidence_sha256"] = evidence_hash(request["evidence"])

    path = rewritten(
        made(approved, viewer, tmp_path), edit_json("request.json", edit), resum=("request.json",)
    )

    code, out = verify_offline(path)

    assert code == 1
    assert "ok    the evidence hashes to request.json's evidence_sha256" in out
    assert "(approval.opened) recorded the evidence's SHA-256 as" in out


def test_a_dropped_file_is_named(approved, viewer, tmp_path, verify_offline):
    def drop(files):
        return {k: v for k, v in files.items() if k != "decisions.json"}

    code, out = verify_offline(rewritten(made(approved, viewer, tmp_path), drop))

    assert code == 1
    assert "decisions.json is listed in the manifest but missing from the bundle" in out


def test_a_file_dropped_from_the_manifest_too_is_named(approved, viewer, tmp_path, verify_offline):
    def drop(files):
        manifest = json.loads(files["manifest.json"])
        del manifest["files"]["comments.json"]
        kept = {k: v for k, v in files.items() if k != "comments.json"}
        return {**kept, "manifest.json": json.dumps(manifest).encode()}

    code, out = verify_offline(rewritten(made(approved, viewer, tmp_path), drop))

    assert code == 1
    assert "comments.json is missing: every bundle holds it" in out


def test_an_added_file_is_named(approved, viewer, tmp_path, verify_offline):
    def add(files):
        return {**files, "approved-by-ceo.txt": b"yes"}

    code, out = verify_offline(rewritten(made(approved, viewer, tmp_path), add))

    assert code == 1
    assert "approved-by-ceo.txt is in the bundle but not listed in the manifest" in out


def test_an_audit_events_changed_payload_is_named(approved, viewer, tmp_path, verify_offline):
    def soften(event):
        event["payload"] = event["payload"].replace('"role":"product_owner"', '"role":"auditor"')

    path = rewritten(
        made(approved, viewer, tmp_path),
        edit_event("approval.decided", soften),
        resum=("audit_events.jsonl",),
    )

    code, out = verify_offline(path)

    assert code == 1
    assert "FAIL  every audit event's hash recomputes from its fields" in out
    assert "(approval.decided) was changed: its fields no longer hash to" in out


def test_an_audit_event_rehashed_after_a_change_breaks_the_link_to_the_next(
    approved, viewer, tmp_path, verify_offline
):
    """The last decision and the approval it completes are consecutive links of the chain."""

    def forge(event):
        event["payload"] = event["payload"].replace("Benchmarked.", "Not benchmarked.")
        rehash(event)

    def change(files):
        events = [json.loads(line) for line in files["audit_events.jsonl"].splitlines()]
        last_decision = [e for e in events if e["action"] == "approval.decided"][-1]
        forge(last_decision)
        lines = "".join(json.dumps(e) + "\n" for e in events)
        return {**files, "audit_events.jsonl": lines.encode()}

    path = rewritten(made(approved, viewer, tmp_path), change, resum=("audit_events.jsonl",))

    code, out = verify_offline(path)

    assert code == 1
    assert "ok    every audit event's hash recomputes from its fields" in out
    decided = AuditEvent.objects.filter(action="approval.decided").latest("seq").seq
    assert f"audit event #{decided + 1} is not chained to #{decided}" in out


def test_reordered_audit_events_are_named(approved, viewer, tmp_path, verify_offline):
    def swap(files):
        lines = files["audit_events.jsonl"].splitlines(keepends=True)
        lines[0], lines[1] = lines[1], lines[0]
        return {**files, "audit_events.jsonl": b"".join(lines)}

    path = rewritten(made(approved, viewer, tmp_path), swap, resum=("audit_events.jsonl",))

    code, out = verify_offline(path)

    assert code == 1
    assert "the events are out of order or repeated" in out


def test_a_line_that_is_not_an_audit_event_is_named(approved, viewer, tmp_path, verify_offline):
    def add(files):
        return {**files, "audit_events.jsonl": files["audit_events.jsonl"] + b'{"seq": 1}\n'}

    path = rewritten(made(approved, viewer, tmp_path), add, resum=("audit_events.jsonl",))

    code, out = verify_offline(path)

    assert code == 1
    assert "audit_events.jsonl line" in out
    assert "is not an audit event: it lacks at," in out


def test_a_checkpoint_that_the_manifest_does_not_record_is_named(
    approved, auditor, tmp_path, verify_offline
):
    audit.verify_now(actor=auditor, trigger="page")

    def change(files):
        return {**files, "checkpoint.txt": f"1:{'a' * 64}\n".encode()}

    path = rewritten(made(approved, auditor, tmp_path), change, resum=("checkpoint.txt",))

    code, out = verify_offline(path)

    assert code == 1
    assert "checkpoint.txt says #1, which the manifest does not record" in out


def test_a_bundle_from_a_later_format_is_refused(approved, viewer, tmp_path, verify_offline):
    def later(files):
        manifest = json.loads(files["manifest.json"])
        manifest["format_version"] = 2
        return {**files, "manifest.json": json.dumps(manifest).encode()}

    code, out = verify_offline(rewritten(made(approved, viewer, tmp_path), later))

    assert code == 1
    assert "the bundle has format version 2; this Quorum reads up to 1" in out


def test_a_bundle_without_a_manifest_is_named(approved, viewer, tmp_path, verify_offline):
    path = made(approved, viewer, tmp_path)
    files = files_of(path)
    stripped = tmp_path / "stripped.zip"
    with zipfile.ZipFile(stripped, "w") as archive:
        for name, data in files.items():
            if name != "manifest.json":
                archive.writestr(name, data)

    code, out = verify_offline(stripped)

    assert code == 1
    assert "manifest.json is missing" in out
    assert "skip  the manifest lists exactly the files in the bundle" in out


def test_a_damaged_zip_is_a_clear_error(approved, viewer, tmp_path, django_db_blocker):
    path = made(approved, viewer, tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        start = archive.getinfo("request.json").header_offset + 60
    data[start : start + 20] = bytes(20)
    path.write_bytes(bytes(data))

    with django_db_blocker.block(), pytest.raises(CommandError) as error:
        call_command("verify_bundle", str(path))

    assert error.value.returncode == 2
    assert str(error.value).startswith(f"{path.name} is a damaged zip: ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"%PDF-1.7 not a zip at all", "release.zip is not a zip file"),
        (b"", "release.zip is not a zip file"),
    ],
)
def test_a_file_that_is_not_a_zip_is_a_clear_error(tmp_path, django_db_blocker, content, message):
    path = tmp_path / "release.zip"
    path.write_bytes(content)

    with django_db_blocker.block(), pytest.raises(CommandError, match=message) as error:
        call_command("verify_bundle", str(path))

    assert error.value.returncode == 2


def test_a_truncated_bundle_is_a_clear_error(opened, viewer, tmp_path, django_db_blocker):
    path = made(opened, viewer, tmp_path)
    path.write_bytes(path.read_bytes()[:-200])

    with django_db_blocker.block(), pytest.raises(CommandError, match="not a zip file") as error:
        call_command("verify_bundle", str(path))

    assert error.value.returncode == 2


@pytest.mark.parametrize(
    ("where", "message"), [("nowhere.zip", "no such file"), ("", "is a folder, not a bundle")]
)
def test_a_path_that_is_no_file_is_a_clear_error(tmp_path, django_db_blocker, where, message):
    with django_db_blocker.block(), pytest.raises(CommandError, match=message) as error:
        call_command("verify_bundle", str(tmp_path / where))
    assert error.value.returncode == 2


# The page and the API


def page(approval) -> str:
    return reverse("approval_bundle", args=[approval.project.slug, approval.pk])


def api(approval) -> str:
    return f"/api/v1/approval-requests/{approval.pk}/bundle/"


@pytest.mark.parametrize("who", ["auditor", "viewer", "engineer"])
def test_members_download_the_bundle_from_the_page(opened, login, request, who):
    response = login(request.getfixturevalue(who)).get(page(opened))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == (
        f'attachment; filename="release-{opened.pk}-credit-scoring-v1-production.zip"'
    )
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        manifest = archive.read("manifest.json")
    assert response["X-Quorum-Manifest-SHA256"] == hashlib.sha256(manifest).hexdigest()


def test_the_request_page_links_the_bundle(opened, login, viewer):
    body = login(viewer).get(reverse("approval", args=["credit-risk", opened.pk])).content
    assert page(opened).encode() in body


def test_an_outsider_gets_404_from_the_page_and_nothing_is_recorded(opened, login, outsider):
    response = login(outsider).get(page(opened))
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="approval.bundle_exported").exists()


def test_a_request_of_another_project_is_404_on_the_page(opened, login, viewer, admin_user, owner):
    make_project(
        admin=admin_user, owner=owner, slug="fraud", name="Fraud", members={viewer: "viewer"}
    )
    response = login(viewer).get(reverse("approval_bundle", args=["fraud", opened.pk]))
    assert response.status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(opened, client):
    response = client.get(page(opened))
    assert response.status_code == 302
    assert "login" in response["Location"]


@pytest.mark.parametrize("who", ["auditor", "viewer"])
def test_the_api_answers_with_the_zip(opened, request, who):
    response = bearer(request.getfixturevalue(who)).get(api(opened))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert (
        f'filename="release-{opened.pk}-credit-scoring-v1-production.zip"'
        in (response["Content-Disposition"])
    )
    assert zipfile.ZipFile(io.BytesIO(response.content)).testzip() is None
    event = AuditEvent.objects.get(action="approval.bundle_exported")
    assert event.actor_kind == "token"


def test_the_api_answers_with_the_zip_whatever_the_client_accepts(opened, viewer):
    response = bearer(viewer).get(api(opened), HTTP_ACCEPT="application/zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"


def test_an_outsider_gets_404_from_the_api_in_the_one_error_body(opened, outsider):
    response = bearer(outsider).get(api(opened))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "request_not_found"
    assert not AuditEvent.objects.filter(action="approval.bundle_exported").exists()


def test_an_unknown_request_is_404_from_the_api(opened, viewer):
    response = bearer(viewer).get(f"/api/v1/approval-requests/{opened.pk + 100}/bundle/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "request_not_found"


def test_a_ci_token_downloads_its_projects_bundles_only(
    opened, scientist, project, admin_user, owner
):
    assert bearer(scientist, project).get(api(opened)).status_code == 200
    other = make_project(admin=admin_user, owner=owner, slug="fraud", name="Fraud",
                         members={scientist: "data_scientist"})  # fmt: skip
    response = bearer(scientist, other).get(api(opened))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "request_not_found"


def test_signed_out_api_callers_get_401(opened):
    response = APIClient().get(api(opened))
    assert response.status_code in (401, 403)
    assert "error" in response.json()
