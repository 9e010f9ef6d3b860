"""Every change to release policies and requests: open, decide, withdraw, expire, move the
alias, guard it, and comment. The rules of the domain are enforced here, not in pages."""

import hashlib
import io
import re
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from governance.access.models import Membership, Project
from governance.access.permissions import require
from governance.access.roles import Capability, Role, role_words
from governance.approvals import bundle, gates, rules
from governance.approvals.errors import (
    AlreadyDecided,
    CommentNotFound,
    CommentRequired,
    GatesFailing,
    InvalidComment,
    InvalidPolicy,
    NoPolicy,
    NotAnApprover,
    NothingToRetry,
    RequestAlreadyOpen,
    RequestClosed,
    SeparationOfDuties,
    StalePolicy,
)
from governance.approvals.evidence import evidence_hash, evidence_of, policy_content
from governance.approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    Comment,
    Decision,
    PolicyVersion,
    Watcher,
)
from governance.approvals.selectors import barred, progress_of
from governance.audit.services import SystemActor, record
from governance.errors import InvalidInput
from governance.notify.kinds import Kind
from governance.notify.services import notify
from governance.registry.errors import MlflowNotFound, MlflowRefused, VersionNotFound
from governance.registry.mlflow_client import Mlflow
from governance.registry.models import Lifecycle, ModelVersion, RegisteredModel

User = get_user_model()
State = ApprovalRequest.State
AliasState = ApprovalRequest.AliasState

QUORUM = SystemActor("quorum")
# An MLflow alias: MLflow refuses `latest` and `v<number>`, which name versions.
STAGE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
RESERVED_STAGES = re.compile(r"^(latest|v\d+)$")
MAX_PER_ROLE = 10
MAX_QUORUM = 20
MAX_OPEN_DAYS = 365
MAX_NOTE = 5000
MAX_COMMENT = 10_000
MENTION = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")
RELEASE_TAG = "quorum.release"


# Policies


def save_policy(
    *,
    actor: AbstractBaseUser,
    project: Project,
    stage: str,
    required: dict[str, int],
    quorum: int | None = None,
    open_days: int = 14,
    gates_: list[dict] | None = None,
    guard: bool = False,
    note: str = "",
    based_on: int | None = None,
) -> PolicyVersion:
    """Save a new version of the project's policy for `stage` (product owners and admins).

    `based_on` is the version number the editor started from: if someone saved since, raises
    StalePolicy. Saving what is already in force makes no version. Raises InvalidPolicy,
    InvalidGate (with the position of an expression's mistake), NotAllowed.
    """
    require(actor, Capability.EDIT_POLICIES, project)
    stage = _clean_stage(stage)
    required = _clean_required(required)
    floor = sum(required.values())
    quorum = floor if quorum is None else quorum
    if not isinstance(quorum, int) or not floor <= quorum <= MAX_QUORUM:
        raise InvalidPolicy(
            f"The quorum is a whole number from {floor} (the approvals per role added up) to "
            f"{MAX_QUORUM}.",
            fields={"quorum": ["out of range"]},
        )
    if not isinstance(open_days, int) or not 1 <= open_days <= MAX_OPEN_DAYS:
        raise InvalidPolicy(
            f"A request stays open 1 to {MAX_OPEN_DAYS} days.", fields={"open_days": ["range"]}
        )
    cleaned_gates = gates.clean(gates_ or [])
    note = _short(note, 500, "note")
    content = {
        "required": required,
        "quorum": quorum,
        "open_days": open_days,
        "gates": cleaned_gates,
        "guard": bool(guard),
    }
    with transaction.atomic():
        ApprovalPolicy.objects.get_or_create(project=project, stage=stage)
        policy = (
            ApprovalPolicy.objects.select_for_update(of=("self",))
            .select_related("current")
            .get(project=project, stage=stage)
        )
        current = policy.current
        if based_on is not None and (current.number if current else 0) != based_on:
            raise StalePolicy
        before = policy_content(current) if current else None
        if before == content:
            return current
        version = PolicyVersion.objects.create(
            policy=policy,
            number=(current.number if current else 0) + 1,
            created_by=actor,
            note=note,
            **content,
        )
        policy.current = version
        policy.save(update_fields=["current"])
        record(
            actor=actor,
            action="policy.saved",
            target=policy,
            project=project,
            payload={
                "stage": stage,
                "version": version.number,
                "note": note,
                "before": before,
                "after": content,
            },
        )
    return version


def _clean_stage(stage: object) -> str:
    """A stage is the MLflow alias a release moves. Raises InvalidPolicy."""
    if not isinstance(stage, str) or not STAGE.match(stage) or RESERVED_STAGES.match(stage):
        raise InvalidPolicy(
            "A stage is 1 to 32 lower-case letters, digits, - and _, starting with a letter, "
            "and not `latest` or `v<number>` (MLflow keeps those).",
            fields={"stage": ["not a valid stage"]},
        )
    return stage


def _clean_required(required: object) -> dict[str, int]:
    if not isinstance(required, dict) or not required:
        raise InvalidPolicy(
            "Say which roles must approve, e.g. one product owner.",
            fields={"required": ["at least one role"]},
        )
    cleaned = {}
    for role, count in required.items():
        if role not in rules.APPROVER_ROLES:
            allowed = ", ".join(role_words(r) for r in rules.APPROVER_ROLES)
            raise InvalidPolicy(
                f"{role!r} cannot approve releases; the roles that can: {allowed}.",
                fields={"required": [f"unknown or non-approving role {role!r}"]},
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_PER_ROLE:
            raise InvalidPolicy(
                f"Approvals per role are whole numbers from 0 to {MAX_PER_ROLE}.",
                fields={"required": [f"{role}: {count!r}"]},
            )
        if count:
            cleaned[str(role)] = count
    if not cleaned:
        raise InvalidPolicy(
            "At least one role must approve.", fields={"required": ["at least one role"]}
        )
    # A stable order, so that saving the same policy twice compares equal.
    return {role.value: cleaned[role.value] for role in Role if role.value in cleaned}


# Requests


def open_request(
    *, actor: AbstractBaseUser, version: ModelVersion, stage: str, note: str = ""
) -> ApprovalRequest:
    """Ask for `version` to be released to `stage`, freezing the evidence it is judged on.

    Raises VersionNotFound (not in the actor's projects), NotAllowed, NoPolicy,
    RequestAlreadyOpen, InvalidInput. Reads MLflow nothing: the mirror holds the evidence.
    """
    project = version.model.project
    if project is None:
        raise VersionNotFound
    require(actor, Capability.REQUEST_RELEASE, project)
    if version.lifecycle != Lifecycle.ACTIVE or version.model.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput("This version was deleted in MLflow; it cannot be released.")
    stage = _stage_of_request(stage)
    note = _short(note, MAX_NOTE, "note")
    policy = (
        ApprovalPolicy.objects.select_related("current")
        .filter(project=project, stage=stage, current__isnull=False)
        .first()
    )
    if policy is None:
        raise NoPolicy(
            f"{project.name} has no release policy for {stage!r}: a product owner sets one "
            "on the project's policies page.",
            fields={"stage": ["no policy"]},
        )
    terms = policy.current
    results = gates.check_all(version, terms.gates)
    now = timezone.now()
    evidence = evidence_of(version, terms, results, now)
    digest = evidence_hash(evidence)
    try:
        with transaction.atomic():
            approval = ApprovalRequest.objects.create(
                project=project,
                version=version,
                stage=stage,
                policy_version=terms,
                requested_by=actor,
                note=note,
                evidence=evidence,
                evidence_hash=digest,
                gate_results=[r.as_dict() for r in results],
                gates_checked_at=now,
                opened_at=now,
                expires_at=now + timedelta(days=terms.open_days),
            )
            Watcher.objects.create(approval=approval, user=actor)
            record(
                actor=actor,
                action="approval.opened",
                target=approval,
                project=project,
                payload={
                    "model": version.model.name,
                    "version": version.version,
                    "stage": stage,
                    "policy_version": terms.number,
                    "evidence_sha256": digest,
                    "gates": {r.label: r.outcome for r in results},
                    "note": note,
                },
            )
            _tell_approvers(approval)
    except IntegrityError:
        raise RequestAlreadyOpen from None
    return approval


def _stage_of_request(stage: object) -> str:
    try:
        return _clean_stage(stage)
    except InvalidPolicy as error:
        raise InvalidInput(error.message, fields=error.fields) from None


def recheck_gates(*, actor: AbstractBaseUser, approval: ApprovalRequest) -> list[gates.GateResult]:
    """Judge the gates of an open request again, now. Any member of the project may ask."""
    require(actor, Capability.VIEW_PROJECT, approval.project)
    with transaction.atomic():
        approval = _locked(approval)
        if not approval.is_open:
            raise RequestClosed(f"This request is {approval.get_state_display().lower()}.")
        results = gates.check_all(approval.version, approval.policy_version.gates)
        before = {g["label"]: g["outcome"] for g in approval.gate_results}
        approval.gate_results = [r.as_dict() for r in results]
        approval.gates_checked_at = timezone.now()
        approval.save(update_fields=["gate_results", "gates_checked_at"])
        record(
            actor=actor,
            action="approval.gates_checked",
            target=approval,
            project=approval.project,
            payload={"before": before, "after": {r.label: r.outcome for r in results}},
        )
    return results


def decide(
    *, actor: AbstractBaseUser, approval: ApprovalRequest, verdict: str, comment: str = ""
) -> Decision:
    """Approve or reject a request. One decision per person; a rejection needs a comment; an
    approval needs every gate to pass now. The last approval needed approves the request and
    queues the alias move; any rejection rejects it.

    Raises NotAllowed, NotAnApprover, SeparationOfDuties, AlreadyDecided, CommentRequired,
    GatesFailing, RequestClosed (also when the request has just expired).
    """
    project = approval.project
    require(actor, Capability.APPROVE_RELEASE, project)
    if verdict not in Decision.Verdict.values:
        raise InvalidInput(
            "A decision is `approve` or `reject`.", fields={"verdict": ["approve or reject"]}
        )
    comment = _short(comment, MAX_NOTE, "comment")
    if verdict == Decision.Verdict.REJECT and not comment:
        raise CommentRequired(fields={"comment": [CommentRequired.default_message]})
    membership = Membership.objects.filter(project=project, user=actor).first()
    expired = False
    with transaction.atomic():
        approval = _locked(approval)
        if not approval.is_open:
            raise RequestClosed(f"This request is {approval.get_state_display().lower()}.")
        if approval.expires_at <= timezone.now():
            _close(approval, State.EXPIRED, QUORUM, "no outcome before the request expired")
            expired = True
        else:
            terms = approval.policy_version
            if membership is None or membership.role not in terms.required:
                needed = ", ".join(role_words(role) for role, _ in terms.slots())
                raise NotAnApprover(
                    f"This policy asks for approvals from: {needed}. Your role fills none."
                )
            reason = barred(actor, approval)
            if reason:
                raise SeparationOfDuties(f"You may not approve this release: {reason}.")
            if Decision.objects.filter(approval=approval, approver=actor).exists():
                raise AlreadyDecided
            if verdict == Decision.Verdict.APPROVE:
                _require_gates(approval)
            decision = Decision.objects.create(
                approval=approval,
                approver=actor,
                role=membership.role,
                verdict=verdict,
                comment=comment,
            )
            Watcher.objects.get_or_create(approval=approval, user=actor)
            standing = progress_of(approval)
            record(
                actor=actor,
                action="approval.decided",
                target=approval,
                project=project,
                payload={
                    "verdict": verdict,
                    "role": membership.role,
                    "comment": comment,
                    "approvals": standing.approvals,
                    "quorum": standing.quorum,
                },
            )
            _tell_watchers(
                approval,
                kind=Kind.RELEASE_DECIDED,
                subject=f"{actor.get_username()} {decision.get_verdict_display().lower()} "
                f"{approval.version} for {approval.stage}",
                body=comment or "No comment.",
                key=f"decision-{decision.pk}",
                skip=actor,
            )
            if standing.rejected:
                _close(approval, State.REJECTED, actor, comment)
            elif standing.complete:
                _approve(approval, actor)
    if expired:
        raise RequestClosed("This request expired before it was decided.")
    return decision


def _require_gates(approval: ApprovalRequest) -> None:
    results = gates.check_all(approval.version, approval.policy_version.gates)
    failing = [r for r in results if not r.passed]
    if not failing:
        return
    reasons = [f"{r.label}: {r.reason}" for r in failing]
    raise GatesFailing(
        "The release cannot be approved while a gate does not pass: " + "; ".join(reasons) + ".",
        fields={"gates": reasons},
    )


def _approve(approval: ApprovalRequest, actor: object) -> None:
    """Approved: the previous holder of the stage is superseded; the alias move is queued."""
    held = (
        ApprovalRequest.objects.select_for_update()
        .filter(
            version__model_id=approval.version.model_id,
            stage=approval.stage,
            state=State.APPROVED,
        )
        .exclude(pk=approval.pk)
    )
    for previous in held:
        previous.state = State.SUPERSEDED
        previous.outcome_note = f"superseded by request #{approval.pk}"
        previous.save(update_fields=["state", "outcome_note"])
        record(
            actor=actor,
            action="approval.superseded",
            target=previous,
            project=previous.project,
            payload={
                "by": approval.pk,
                "before": {"state": "approved"},
                "after": {"state": "superseded"},
            },
        )
    approval.alias_state = AliasState.PENDING
    approval.save(update_fields=["alias_state"])
    _close(approval, State.APPROVED, actor, "")
    approval_id = approval.pk
    transaction.on_commit(lambda: _enqueue_alias_move(approval_id))


def _enqueue_alias_move(approval_id: int) -> None:
    from governance.approvals.tasks import move_alias  # the task imports this module

    move_alias.delay(approval_id=approval_id)


def _close(approval: ApprovalRequest, state: str, actor: object, note: str) -> None:
    before = approval.state
    approval.state = state
    approval.closed_at = timezone.now()
    approval.outcome_note = note[:500]
    approval.save(update_fields=["state", "closed_at", "outcome_note"])
    record(
        actor=actor,
        action=f"approval.{state}",
        target=approval,
        project=approval.project,
        payload={"before": {"state": before}, "after": {"state": state}, "note": note},
    )
    _tell_watchers(
        approval,
        kind=Kind.RELEASE_OUTCOME,
        subject=f"{approval.version} for {approval.stage}: {approval.get_state_display().lower()}",
        body=note or f"Request #{approval.pk} is {approval.get_state_display().lower()}.",
        key=f"outcome-{approval.pk}-{state}",
    )


def withdraw_request(
    *, actor: AbstractBaseUser, approval: ApprovalRequest, note: str = ""
) -> ApprovalRequest:
    """Withdraw an open request: its requester, or a product owner or admin of the project."""
    capabilities = require(actor, Capability.VIEW_PROJECT, approval.project)
    if approval.requested_by_id != actor.pk and Capability.EDIT_POLICIES not in capabilities:
        require(actor, Capability.EDIT_POLICIES, approval.project)
    note = _short(note, 500, "note")
    with transaction.atomic():
        approval = _locked(approval)
        if not approval.is_open:
            raise RequestClosed(f"This request is {approval.get_state_display().lower()}.")
        _close(approval, State.WITHDRAWN, actor, note or "withdrawn")
    return approval


def expire_requests(*, now: datetime | None = None) -> int:
    """Close the open requests whose time ran out. Returns how many."""
    now = now or timezone.now()
    ids = list(
        ApprovalRequest.objects.filter(state=State.OPEN, expires_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    closed = 0
    for pk in ids:
        with transaction.atomic():
            approval = ApprovalRequest.objects.select_for_update().filter(pk=pk).first()
            if approval is None or not approval.is_open or approval.expires_at > now:
                continue  # decided or withdrawn meanwhile
            _close(approval, State.EXPIRED, QUORUM, "no outcome before the request expired")
            closed += 1
    return closed


def _locked(approval: ApprovalRequest) -> ApprovalRequest:
    return (
        ApprovalRequest.objects.select_for_update(of=("self",))
        .select_related("project", "version__model", "version__run", "policy_version__policy")
        .get(pk=approval.pk)
    )


# The alias in MLflow


def move_alias(*, approval_id: int, mlflow: Mlflow | None = None) -> ApprovalRequest:
    """Point the stage's alias at the approved version in MLflow and tag the version with the
    request. Idempotent; MLflow is called outside any transaction. Raises MlflowUnavailable
    (the task retries), MlflowRefused and MlflowNotFound (the move fails for good)."""
    approval = ApprovalRequest.objects.select_related("version__model").get(pk=approval_id)
    if approval.alias_state != AliasState.PENDING or approval.state not in (
        State.APPROVED,
        State.SUPERSEDED,
    ):
        return approval
    if approval.state == State.SUPERSEDED:
        # A later approval took the stage before this move ran: moving would undo it.
        return _finish_alias(approval, AliasState.FAILED, "superseded before the alias moved")
    model, number = approval.version.model.name, approval.version.version
    mlflow = mlflow or Mlflow()
    try:
        mlflow.set_alias(model, approval.stage, number)
        mlflow.set_version_tag(model, number, RELEASE_TAG, str(approval.pk))
    except (MlflowRefused, MlflowNotFound) as error:
        return _finish_alias(approval, AliasState.FAILED, error.message)
    with transaction.atomic():
        approval = _locked(approval)
        if approval.alias_state != AliasState.PENDING:
            return approval
        registered = RegisteredModel.objects.select_for_update().get(pk=approval.version.model_id)
        before = registered.aliases.get(approval.stage)
        # The mirror learns of the move now, so the next sync does not take it for a move
        # made outside Quorum.
        registered.aliases = {**registered.aliases, approval.stage: number}
        registered.save(update_fields=["aliases"])
        approval.alias_state = AliasState.MOVED
        approval.alias_moved_at = timezone.now()
        approval.alias_error = ""
        approval.save(update_fields=["alias_state", "alias_moved_at", "alias_error"])
        record(
            actor=QUORUM,
            action="approval.alias_moved",
            target=approval,
            project=approval.project,
            payload={
                "model": model,
                "alias": approval.stage,
                "before": {"version": before},
                "after": {"version": number},
            },
        )
        _tell_watchers(
            approval,
            kind=Kind.RELEASE_OUTCOME,
            subject=f"{approval.version} is now {approval.stage}",
            body=f"MLflow's alias {approval.stage!r} of {model} points at version {number}.",
            key=f"alias-{approval.pk}",
        )
    return approval


def note_alias_failure(*, approval_id: int, error: str, final: bool) -> ApprovalRequest:
    """A move that MLflow did not take: count it, keep the reason; when no retry is left,
    the move has failed and the page offers to retry."""
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
        if approval.alias_state != AliasState.PENDING:
            return approval
        approval.alias_attempts += 1
        approval.alias_error = error[:2000]
        approval.save(update_fields=["alias_attempts", "alias_error"])
        if final:
            return _finish_alias(approval, AliasState.FAILED, error)
    return approval


def _finish_alias(approval: ApprovalRequest, state: str, error: str) -> ApprovalRequest:
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval.pk)
        if approval.alias_state != AliasState.PENDING:
            return approval
        approval.alias_state = state
        approval.alias_error = error[:2000]
        approval.save(update_fields=["alias_state", "alias_error"])
        record(
            actor=QUORUM,
            action="approval.alias_failed",
            target=approval,
            project=approval.project,
            payload={"alias": approval.stage, "reason": error[:500]},
        )
    return approval


def retry_alias_move(*, actor: AbstractBaseUser, approval: ApprovalRequest) -> ApprovalRequest:
    """Queue the alias move of an approved request again, after it failed."""
    require(actor, Capability.APPROVE_RELEASE, approval.project)
    with transaction.atomic():
        approval = _locked(approval)
        if approval.state != State.APPROVED or approval.alias_state != AliasState.FAILED:
            raise NothingToRetry
        approval.alias_state = AliasState.PENDING
        approval.alias_attempts = 0
        approval.save(update_fields=["alias_state", "alias_attempts"])
        record(
            actor=actor,
            action="approval.alias_retried",
            target=approval,
            project=approval.project,
            payload={"alias": approval.stage, "last_error": approval.alias_error[:500]},
        )
        approval_id = approval.pk
        transaction.on_commit(lambda: _enqueue_alias_move(approval_id))
    return approval


def enforce_guard(*, model_id: int, stage: str, mlflow: Mlflow | None = None) -> bool:
    """Someone moved a guarded stage's alias in MLflow: move it back to the approved version
    (or remove it when none is approved) and tell the people responsible. Returns whether it
    moved anything. Raises MlflowUnavailable (the task retries)."""
    model = RegisteredModel.objects.select_related("project").get(pk=model_id)
    if model.project is None:
        return False
    policy = (
        ApprovalPolicy.objects.select_related("current")
        .filter(project=model.project, stage=stage, current__guard=True)
        .first()
    )
    if policy is None:
        return False
    holder = (
        ApprovalRequest.objects.select_related("version")
        .filter(version__model=model, stage=stage, state=State.APPROVED)
        .order_by("-closed_at")
        .first()
    )
    if holder is not None and holder.alias_state == AliasState.PENDING:
        return False  # Quorum's own move is on its way
    wanted = holder.version.version if holder else None
    if model.aliases.get(stage) == wanted:
        return False
    mlflow = mlflow or Mlflow()
    if wanted is None:
        mlflow.delete_alias(model.name, stage)
    else:
        mlflow.set_alias(model.name, stage, wanted)
    with transaction.atomic():
        registered = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        found = registered.aliases.get(stage)
        aliases = {k: v for k, v in registered.aliases.items() if k != stage}
        if wanted is not None:
            aliases[stage] = wanted
        registered.aliases = aliases
        registered.save(update_fields=["aliases"])
        record(
            actor=QUORUM,
            action="approval.alias_reverted",
            target=registered,
            project=model.project,
            payload={
                "alias": stage,
                "request": holder.pk if holder else None,
                "before": {"version": found},
                "after": {"version": wanted},
            },
        )
        owners = User.objects.filter(
            memberships__project=model.project, memberships__role=Role.PRODUCT_OWNER
        )
        people = set(owners)
        if holder is not None:
            people.add(holder.requested_by)
        notify(
            recipients=people,
            kind=Kind.RELEASE_OUTCOME,
            subject=f"{stage} of {model.name} was moved outside Quorum and put back",
            body=(
                f"Someone pointed {stage!r} at version {found} in MLflow. The policy guards "
                f"this stage, so Quorum moved it back to "
                f"{'version ' + str(wanted) if wanted else 'no version'}."
            ),
            url=reverse("model", args=[model.project.slug, model.name]),
            key=f"guard-{model.pk}-{stage}-{found}-{timezone.now().isoformat()}",
            project=model.project,
        )
    return True


# The evidence bundle


def export_bundle(*, actor: AbstractBaseUser, approval: ApprovalRequest) -> bundle.ExportedBundle:
    """Make the release evidence bundle of `approval` (a zip, in memory) and record who made
    it, with the manifest's SHA-256. Every member of the project may, auditors and viewers
    too. Raises ProjectNotFound for anyone else. Reads the request's whole history."""
    require(actor, Capability.VIEW_PROJECT, approval.project)
    buffer = io.BytesIO()
    written = bundle.write(approval, made_by=actor.get_username(), destination=buffer)
    content = buffer.getvalue()
    manifest = written.manifest
    with transaction.atomic():
        record(
            actor=actor,
            action="approval.bundle_exported",
            target=approval,
            project=approval.project,
            payload={
                "manifest_sha256": written.manifest_sha256,
                "bundle_sha256": hashlib.sha256(content).hexdigest(),
                "bytes": len(content),
                "format_version": manifest["format_version"],
                "files": sorted(manifest["files"]),
                "audit_through_seq": manifest["audit_through_seq"],
                "checkpoint": manifest["checkpoint"],
            },
        )
    return bundle.ExportedBundle(
        filename=bundle.filename_of(approval),
        content=content,
        manifest=manifest,
        manifest_sha256=written.manifest_sha256,
    )


# Watching and comments


def watch(*, actor: AbstractBaseUser, approval: ApprovalRequest, on: bool = True) -> bool:
    """Be told (or no longer) of a request's decisions and outcome. Returns whether watching."""
    require(actor, Capability.VIEW_PROJECT, approval.project)
    if on:
        Watcher.objects.get_or_create(approval=approval, user=actor)
    else:
        Watcher.objects.filter(approval=approval, user=actor).delete()
    return on


def add_comment(
    *,
    actor: AbstractBaseUser,
    body: str,
    approval: ApprovalRequest | None = None,
    version: ModelVersion | None = None,
    parent: Comment | None = None,
) -> Comment:
    """Comment on a request or a model version, or answer a comment. `@username` tells that
    member of the project. Raises NotAllowed, InvalidComment, CommentNotFound."""
    if (approval is None) == (version is None):
        raise InvalidComment("A comment is on a request or on a model version.")
    project = approval.project if approval else version.model.project
    if project is None:
        raise VersionNotFound
    require(actor, Capability.VIEW_PROJECT, project)
    if not isinstance(body, str) or not body.strip():
        raise InvalidComment("Write something.", fields={"body": ["empty"]})
    if len(body) > MAX_COMMENT:
        raise InvalidComment(
            f"A comment is at most {MAX_COMMENT} characters.", fields={"body": ["too long"]}
        )
    if parent is not None and (
        parent.approval_id != (approval.pk if approval else None)
        or parent.version_id != (version.pk if version else None)
    ):
        raise CommentNotFound("The comment you answer is not on this page.")
    if parent is not None and parent.parent_id is not None:
        parent = parent.parent  # one level of threads: answers to answers join the thread
    names = list(dict.fromkeys(MENTION.findall(body)))
    mentioned = list(
        User.objects.filter(
            username__in=names, memberships__project=project, is_active=True
        ).exclude(pk=actor.pk)
    )
    with transaction.atomic():
        comment = Comment.objects.create(
            project=project,
            approval=approval,
            version=version,
            parent=parent,
            author=actor,
            body=body,
            mentions=sorted(u.get_username() for u in mentioned),
        )
        subject = approval if approval else version
        record(
            actor=actor,
            action="comment.added",
            target=comment,
            project=project,
            payload={
                "on": str(subject),
                "parent": parent.pk if parent else None,
                "body": body,
                "mentions": comment.mentions,
            },
        )
        url = _url_of(comment)
        if mentioned:
            notify(
                recipients=mentioned,
                kind=Kind.MENTION,
                subject=f"{actor.get_username()} mentioned you on {subject}",
                body=body[:1000],
                url=url,
                key=f"mention-{comment.pk}",
                project=project,
            )
        if approval is not None:
            Watcher.objects.get_or_create(approval=approval, user=actor)
            _tell_watchers(
                approval,
                kind=Kind.RELEASE_DECIDED,
                subject=f"{actor.get_username()} commented on {approval.version}",
                body=body[:1000],
                key=f"comment-{comment.pk}",
                skip=actor,
                also_skip=mentioned,
            )
    return comment


def _url_of(comment: Comment) -> str:
    if comment.approval_id:
        approval = comment.approval
        return reverse("approval", args=[approval.project.slug, approval.pk]) + (
            f"#comment-{comment.pk}"
        )
    version = comment.version
    return reverse(
        "model_version", args=[comment.project.slug, version.model.name, version.version]
    ) + (f"#comment-{comment.pk}")


# Who is told


def _tell_approvers(approval: ApprovalRequest) -> None:
    terms = approval.policy_version
    members = Membership.objects.filter(
        project=approval.project, role__in=list(terms.required), user__is_active=True
    ).select_related("user")
    people = [m.user for m in members if barred(m.user, approval) is None]
    notify(
        recipients=people,
        kind=Kind.RELEASE_REQUESTED,
        subject=f"{approval.version} waits for your decision for {approval.stage}",
        body=(
            f"{approval.requested_by.get_username()} asks to release {approval.version} to "
            f"{approval.stage}.\n{approval.note}".strip()
        ),
        url=reverse("approval", args=[approval.project.slug, approval.pk]),
        key=f"requested-{approval.pk}",
        project=approval.project,
    )


def _tell_watchers(
    approval: ApprovalRequest,
    *,
    kind: str,
    subject: str,
    body: str,
    key: str,
    skip: AbstractBaseUser | None = None,
    also_skip: list | None = None,
) -> None:
    people = User.objects.filter(
        Q(pk=approval.requested_by_id) | Q(pk__in=approval.watchers.values("user_id"))
    )
    if skip is not None:
        people = people.exclude(pk=skip.pk)
    if also_skip:
        people = people.exclude(pk__in=[u.pk for u in also_skip])
    notify(
        recipients=list(people),
        kind=kind,
        subject=subject,
        body=body,
        url=reverse("approval", args=[approval.project.slug, approval.pk]),
        key=key,
        project=approval.project,
    )


def _short(text: object, limit: int, field: str) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InvalidInput(f"The {field} is text.", fields={field: ["not text"]})
    text = text.strip()
    if len(text) > limit:
        raise InvalidInput(
            f"The {field} is at most {limit} characters.", fields={field: ["too long"]}
        )
    return text
