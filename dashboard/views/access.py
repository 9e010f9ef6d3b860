"""Pages for projects, members and the person's own account."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.forms import (
    AddMemberForm,
    ProjectForm,
    RenameProjectForm,
    RoleForm,
    TokenForm,
    add_domain_error,
)
from dashboard.home import home_of
from dashboard.views.common import raise_refusal
from governance.access import selectors, services
from governance.access.models import ApiToken, Membership, Project
from governance.access.permissions import require_admin
from governance.access.roles import ROLE_CAPABILITIES, Capability, Role
from governance.audit import selectors as audit_selectors
from governance.errors import DomainError


def _project(
    request: HttpRequest, slug: str, capability: str = Capability.VIEW_PROJECT
) -> tuple[Project, frozenset[str]]:
    return selectors.project_for(request.user, slug, capability)


def _membership(project: Project, membership_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "project"), pk=membership_id, project=project
    )


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = selectors.projects_for(request.user, include_archived=request.user.is_superuser)
    context = {"projects": projects, "sections": home_of(request.user)}
    return render(request, "access/home.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def project_new(request: HttpRequest) -> HttpResponse:
    require_admin(request.user)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.create_project(actor=request.user, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, f"{project.name} is ready. You are its product owner.")
            return redirect("project_members", slug=project.slug)
    status = 400 if form.errors else 200
    return render(request, "access/project_new.html", {"form": form}, status=status)


@require_GET
@login_required
def project_overview(request: HttpRequest, slug: str) -> HttpResponse:
    project, capabilities = _project(request, slug)
    members = list(selectors.members_of(project))
    context = {
        "project": project,
        "capabilities": capabilities,
        "section": "project_overview",
        "my_role": next((m.role for m in members if m.user_id == request.user.pk), None),
        "my_capabilities": [c for c in Capability if c in capabilities],
        "role_counts": [
            (Role(role).label, count) for role, count in selectors.role_counts(project).items()
        ],
        "product_owners": [m.user for m in members if m.role == Role.PRODUCT_OWNER],
        "timeline": audit_selectors.timeline_of(project),
    }
    return render(request, "access/project_overview.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    project, capabilities = _project(request, slug, Capability.MANAGE_PROJECT)
    form = RenameProjectForm(
        request.POST or None, initial={"name": project.name, "description": project.description}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.rename_project(actor=request.user, project=project, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, "Saved.")
            return redirect("project_settings", slug=project.slug)
    context = {
        "project": project,
        "capabilities": capabilities,
        "section": "project_settings",
        "form": form,
    }
    return render(
        request, "access/project_settings.html", context, status=400 if form.errors else 200
    )


@require_POST
@login_required
def project_archive(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, Capability.MANAGE_PROJECT)
    change = services.restore_project if project.is_archived else services.archive_project
    try:
        project = change(actor=request.user, project=project)
    except DomainError as error:
        raise_refusal(error)
        messages.error(request, error.message)
    else:
        state = "archived" if project.is_archived else "restored"
        messages.success(request, f"{project.name} is {state}.")
    return redirect("project_settings", slug=project.slug)


# Members


def _members_context(
    request: HttpRequest, project: Project, capabilities: frozenset[str], form: AddMemberForm
) -> dict[str, object]:
    return {
        "project": project,
        "capabilities": capabilities,
        "section": "project_members",
        "members": selectors.members_of(project),
        "form": form,
        "roles": Role.choices,
        "can_manage": Capability.MANAGE_MEMBERS in capabilities and not project.is_archived,
        "role_help": [
            (Role(role).label, sorted(c.label for c in caps))
            for role, caps in ROLE_CAPABILITIES.items()
        ],
    }


@require_http_methods(["GET", "POST"])
@login_required
def project_members(request: HttpRequest, slug: str) -> HttpResponse:
    """The member list; a POST adds a member."""
    if request.method == "GET":
        project, capabilities = _project(request, slug)
        context = _members_context(request, project, capabilities, AddMemberForm())
        return render(request, "access/members.html", context)

    project, capabilities = _project(request, slug, Capability.MANAGE_MEMBERS)
    form = AddMemberForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            user = services.find_user(form.cleaned_data["username"])
            membership = services.add_member(
                actor=request.user, project=project, user=user, role=form.cleaned_data["role"]
            )
        except DomainError as error:
            add_domain_error(form, error)
            status = error.status
        else:
            name = membership.user.get_full_name() or membership.user.get_username()
            messages.success(request, f"{name} joined as {membership.get_role_display()}.")
            if not request.htmx:
                return redirect("project_members", slug=project.slug)
            form, status = AddMemberForm(), 200
    context = _members_context(request, project, capabilities, form)
    template = "access/_members.html" if request.htmx else "access/members.html"
    return render(request, template, context, status=status)


def _member_row(
    request: HttpRequest,
    membership: Membership,
    capabilities: frozenset[str],
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "project": membership.project,
        "member": membership,
        "roles": Role.choices,
        "can_manage": Capability.MANAGE_MEMBERS in capabilities,
        "row_error": error,
    }
    return render(request, "access/_member_row.html", context, status=status)


@require_POST
@login_required
def member_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    project, capabilities = _project(request, slug, Capability.MANAGE_MEMBERS)
    membership = _membership(project, membership_id)
    form = RoleForm(request.POST)
    error, status = "", 200
    if not form.is_valid():
        error, status = "Choose one of the listed roles.", 400
    else:
        try:
            membership = services.change_role(
                actor=request.user, membership=membership, role=form.cleaned_data["role"]
            )
        except DomainError as exc:
            error, status = exc.message, exc.status
    if request.htmx:
        return _member_row(request, membership, capabilities, error=error, status=status)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{membership.user} is now {membership.get_role_display()}.")
    return redirect("project_members", slug=project.slug)


@require_POST
@login_required
def member_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    project, capabilities = _project(request, slug, Capability.MANAGE_MEMBERS)
    membership = _membership(project, membership_id)
    try:
        services.remove_member(actor=request.user, membership=membership)
    except DomainError as error:
        raise_refusal(error)
        if request.htmx:
            return _member_row(
                request, membership, capabilities, error=error.message, status=error.status
            )
        messages.error(request, error.message)
    else:
        if request.htmx:
            return HttpResponse("")  # the row swaps itself out
        messages.success(request, f"{membership.user} left {project.name}.")
    return redirect("project_members", slug=project.slug)


# The person's own account


def _token_projects(request: HttpRequest) -> list[tuple[str, str]]:
    return [(p.slug, p.name) for p in selectors.projects_for(request.user)]


def _tokens_context(
    request: HttpRequest, form: TokenForm, new_secret: str = ""
) -> dict[str, object]:
    return {
        "tokens": selectors.tokens_of(request.user),
        "token_form": form,
        "new_secret": new_secret,
        "now": timezone.now(),
        "api_docs": reverse("api-docs"),
    }


@require_GET
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    memberships = request.user.memberships.select_related("project").order_by("project__name")
    context = {
        "memberships": memberships,
        "events": list(audit_selectors.activity_of(request.user)[:10]),
        **_tokens_context(request, TokenForm(projects=_token_projects(request))),
    }
    return render(request, "access/profile.html", context)


@require_POST
@login_required
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST, projects=_token_projects(request))
    secret, status = "", 400
    if form.is_valid():
        slug = form.cleaned_data["project"]
        try:
            _, secret = services.create_api_token(
                actor=request.user,
                name=form.cleaned_data["name"],
                expires_at=timezone.now() + form.lifetime_delta,
                project=Project.objects.get(slug=slug) if slug else None,
            )
        except DomainError as error:
            add_domain_error(form, error)
            status = error.status
        else:
            form, status = TokenForm(projects=_token_projects(request)), 201
    context = _tokens_context(request, form, new_secret=secret)
    if request.htmx:
        return render(request, "access/_tokens.html", context, status=status)
    memberships = request.user.memberships.select_related("project").order_by("project__name")
    return render(
        request, "access/profile.html", {"memberships": memberships, **context}, status=status
    )


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    try:
        services.revoke_api_token(actor=request.user, token=token)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Token “{token.name}” revoked.")
    if request.htmx:
        return render(
            request,
            "access/_tokens.html",
            _tokens_context(request, TokenForm(projects=_token_projects(request))),
        )
    return redirect("profile")
