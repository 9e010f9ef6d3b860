"""Release approvals: the queue waiting for me, a project's requests, a request's page with
its evidence, gates, decisions and comments, and the policy editor."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.views.common import project_page, raise_refusal
from governance.access import selectors as access
from governance.access.errors import NotAllowed
from governance.access.roles import Capability
from governance.approvals import gates, rules, selectors, services
from governance.approvals.bundle import ExportedBundle
from governance.approvals.errors import CommentNotFound
from governance.approvals.models import ApprovalRequest, Comment
from governance.audit.selectors import history_of
from governance.errors import DomainError, InvalidInput
from governance.registry import selectors as registry

PAGE_SIZE = 30


@require_GET
@login_required
def waiting(request: HttpRequest) -> HttpResponse:
    """Requests the signed-in person can decide on now, across their projects."""
    queue = selectors.waiting_for(request.user)
    return render(
        request,
        "approvals/waiting.html",
        {"queue": [(a, selectors.progress_of(a)) for a in queue]},
    )


@require_GET
@login_required
def approvals(request: HttpRequest, slug: str) -> HttpResponse:
    context = project_page(request, slug, "approvals")
    project = context["project"]
    state = request.GET.get("state", "")
    if state and state not in ApprovalRequest.State.values:
        raise InvalidInput(f"Unknown state {state!r}.")
    found = selectors.approvals_of(
        project,
        state=state,
        stage=request.GET.get("stage", ""),
        model=request.GET.get("model", "").strip(),
    )
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    context.update(
        {
            "page": page,
            "rows": [(a, selectors.progress_of(a)) for a in page.object_list],
            "states": ApprovalRequest.State.choices,
            "stages": [p.stage for p in selectors.policies_of(project)],
            "filters": {k: request.GET.get(k, "") for k in ("state", "stage", "model")},
        }
    )
    return render(request, "approvals/list.html", context)


def _approval(request: HttpRequest, slug: str, pk: int) -> dict:
    context = project_page(request, slug, "approvals")
    approval = selectors.approval_of(context["project"], pk)
    context["approval"] = approval
    return context


@require_GET
@login_required
def approval(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    context = _approval(request, slug, pk)
    return render(request, "approvals/approval.html", _page(request, context))


@require_GET
@login_required
def bundle(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The release evidence bundle: a zip to keep or hand over, checked offline with
    `manage.py verify_bundle`. Making it is recorded on the trail."""
    project, _ = access.project_for(request.user, slug)
    made = services.export_bundle(actor=request.user, approval=selectors.approval_of(project, pk))
    return bundle_response(made)


def bundle_response(made: ExportedBundle) -> HttpResponse:
    """The zip as a download; the page and the API answer alike."""
    response = HttpResponse(made.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{made.filename}"'
    response["X-Quorum-Manifest-SHA256"] = made.manifest_sha256
    return response


def _page(request: HttpRequest, context: dict, error: str = "") -> dict:
    approval = context["approval"]
    capabilities = context["capabilities"]
    standing = selectors.progress_of(approval)
    context.update(
        {
            "progress": standing,
            "decisions": sorted(approval.decisions.all(), key=lambda d: (d.at, d.pk)),
            "why_not": selectors.may_decide(request.user, approval),
            "may_withdraw": approval.is_open
            and (
                approval.requested_by_id == request.user.pk
                or Capability.EDIT_POLICIES in capabilities
            ),
            "may_retry": approval.alias_state == ApprovalRequest.AliasState.FAILED
            and approval.state == ApprovalRequest.State.APPROVED
            and Capability.APPROVE_RELEASE in capabilities,
            "comments": selectors.comments_on(approval=approval),
            "events": list(history_of("approvalrequest", str(approval.pk))[:20]),
            "evidence_json": json.dumps(approval.evidence, indent=2, sort_keys=True),
            "comment_action": reverse(
                "approval_comment", args=[approval.project.slug, approval.pk]
            ),
            "error": error,
        }
    )
    return context


def _act(request: HttpRequest, slug: str, pk: int, action) -> HttpResponse:
    """Run one service on the request; on a refusal, show the page again with the reason."""
    context = _approval(request, slug, pk)
    try:
        done = action(context["approval"])
    except DomainError as error:
        context["approval"] = selectors.approval_of(context["project"], pk)
        return render(
            request, "approvals/approval.html", _page(request, context, error.message),
            status=error.status,
        )  # fmt: skip
    if done:
        messages.success(request, done)
    return redirect("approval", slug=slug, pk=pk)


@require_POST
@login_required
def decide(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    verdict = request.POST.get("verdict", "")

    def act(approval: ApprovalRequest) -> str:
        services.decide(
            actor=request.user,
            approval=approval,
            verdict=verdict,
            comment=request.POST.get("comment", ""),
        )
        return "Approved." if verdict == "approve" else "Rejected."

    return _act(request, slug, pk, act)


@require_POST
@login_required
def withdraw(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    def act(approval: ApprovalRequest) -> str:
        services.withdraw_request(
            actor=request.user, approval=approval, note=request.POST.get("note", "")
        )
        return "Request withdrawn."

    return _act(request, slug, pk, act)


@require_POST
@login_required
def recheck(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    def act(approval: ApprovalRequest) -> str:
        services.recheck_gates(actor=request.user, approval=approval)
        return "Gates checked again."

    return _act(request, slug, pk, act)


@require_POST
@login_required
def retry_alias(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    def act(approval: ApprovalRequest) -> str:
        services.retry_alias_move(actor=request.user, approval=approval)
        return "The alias move is queued again."

    return _act(request, slug, pk, act)


@require_POST
@login_required
def comment(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    def act(approval: ApprovalRequest) -> str:
        services.add_comment(
            actor=request.user,
            approval=approval,
            body=request.POST.get("body", ""),
            parent=_parent(request, approval=approval),
        )
        return ""

    return _act(request, slug, pk, act)


def _parent(request: HttpRequest, **subject: object) -> Comment | None:
    text = request.POST.get("parent", "")
    if not text:
        return None
    if not text.isdigit():
        raise CommentNotFound("The comment you answer is not on this page.")
    found = Comment.objects.filter(pk=int(text), **subject).first()
    if found is None:
        raise CommentNotFound("The comment you answer is not on this page.")
    return found


@require_POST
@login_required
def open_request(request: HttpRequest, slug: str, name: str, number: int) -> HttpResponse:
    """From a version's page: ask for it to be released to a stage."""
    context = project_page(request, slug, "models")
    version = registry.version_of(context["project"], name, number)
    try:
        approval = services.open_request(
            actor=request.user,
            version=version,
            stage=request.POST.get("stage", ""),
            note=request.POST.get("note", ""),
        )
    except DomainError as error:
        raise_refusal(error)
        messages.error(request, error.message)
        return redirect("model_version", slug=slug, name=name, number=number)
    messages.success(request, f"Request #{approval.pk} is open; the approvers are told.")
    return redirect("approval", slug=slug, pk=approval.pk)


@require_POST
@login_required
def version_comment(request: HttpRequest, slug: str, name: str, number: int) -> HttpResponse:
    context = project_page(request, slug, "models")
    version = registry.version_of(context["project"], name, number)
    try:
        services.add_comment(
            actor=request.user,
            version=version,
            body=request.POST.get("body", ""),
            parent=_parent(request, version=version),
        )
    except DomainError as error:
        raise_refusal(error)
        messages.error(request, error.message)
    return redirect(reverse("model_version", args=[slug, name, number]) + "#comments")


# Policies


@require_GET
@login_required
def policies(request: HttpRequest, slug: str) -> HttpResponse:
    context = project_page(request, slug, "approvals")
    context["policies"] = [
        (p, [gates.describe(g) for g in p.current.gates])
        for p in selectors.policies_of(context["project"])
    ]
    context["may_edit"] = Capability.EDIT_POLICIES in context["capabilities"]
    return render(request, "approvals/policies.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def policy_edit(request: HttpRequest, slug: str, stage: str = "") -> HttpResponse:
    """Create a policy (no stage in the URL) or edit one; every save is a new version."""
    context = project_page(request, slug, "approvals")
    project = context["project"]
    if Capability.EDIT_POLICIES not in context["capabilities"]:
        raise NotAllowed("Only product owners and admins edit release policies.")
    policy = selectors.policy_of(project, stage) if stage else None
    current = policy.current if policy else None
    form = {
        "stage": stage,
        "required": {
            role.value: (current.required.get(role.value, 0) if current else 0)
            for role in rules.APPROVER_ROLES
        },
        "quorum": current.quorum if current else "",
        "open_days": current.open_days if current else 14,
        "conditions": "\n".join(
            g["condition"] for g in (current.gates if current else []) if g["kind"] == "metric"
        ),
        # Gates without settings are ticked; a new policy asks for a complete card.
        "kinds": {g["kind"] for g in current.gates} if current else {"card_complete"},
        "guard": current.guard if current else False,
        "note": "",
    }
    error, fields, status = "", {}, 200
    if request.method == "POST":
        try:
            form = _policy_form(request.POST, stage)
            services.save_policy(
                actor=request.user,
                project=project,
                stage=form["stage"],
                required=form["required"],
                quorum=form["quorum"],
                open_days=form["open_days"],
                gates_=form["gates"],
                guard=form["guard"],
                note=form["note"],
                based_on=current.number if current else None,
            )
        except DomainError as exc:
            error, fields, status = exc.message, exc.fields, exc.status
        else:
            messages.success(request, f"Policy for {form['stage']} saved.")
            return redirect("policies", slug=slug)
    context.update(
        {
            "policy": policy,
            "history": list(selectors.policy_history(policy)) if policy else [],
            "form": form,
            "roles": [(r.value, r.label) for r in rules.APPROVER_ROLES],
            "gate_kinds": [k for k in gates.KINDS.values() if k.name != "metric"],
            "error": error,
            "fields": fields,
        }
    )
    return render(request, "approvals/policy_edit.html", context, status=status)


def _policy_form(data: object, stage: str) -> dict:
    """The editor's fields as the service takes them. Raises InvalidInput for a number that
    is not one."""

    def number(name: str, default: object) -> object:
        text = data.get(name, "").strip()
        if not text:
            return default
        if not text.isdigit():
            label = name.removeprefix("required_").replace("_", " ")
            raise InvalidInput(f"{label.capitalize()}: a whole number, not {text!r}.")
        return int(text)

    conditions = [line.strip() for line in data.get("conditions", "").splitlines() if line.strip()]
    kinds = [name for name in data.getlist("gate_kind") if name != "metric"]
    return {
        "stage": stage or data.get("stage", "").strip(),
        "required": {
            role.value: number(f"required_{role.value}", 0) for role in rules.APPROVER_ROLES
        },
        "quorum": number("quorum", None),
        "open_days": number("open_days", 14),
        "conditions": data.get("conditions", ""),
        "kinds": set(kinds),
        "guard": bool(data.get("guard")),
        "note": data.get("note", ""),
        # Unknown kinds go through too: the service names them in its refusal.
        "gates": [{"kind": "metric", "condition": c} for c in conditions]
        + [{"kind": name} for name in kinds],
    }
