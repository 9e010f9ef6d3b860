"""What each person's home shows: for every role they hold, the work of that role across the
projects where they hold it, read from the areas' selectors in a fixed number of queries."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from governance.access.models import Membership, Project
from governance.access.roles import Role, role_words
from governance.approvals import selectors as approvals
from governance.audit import selectors as audit
from governance.delivery import selectors as delivery
from governance.delivery.models import Job
from governance.fairness import selectors as fairness
from governance.monitoring import selectors as monitoring
from governance.notify import selectors as notify
from governance.registry import selectors as registry

# The roles whose work has a home section, in the order the sections appear.
SECTIONS = (Role.PRODUCT_OWNER, Role.DATA_SCIENTIST, Role.ML_ENGINEER, Role.AUDITOR)
# The rows of the live models tile; the rest are counted, with links to their projects.
LIVE_MODELS_SHOWN = 8


@dataclass
class Section:
    role: str
    label: str
    projects: list[Project]
    tiles: dict = field(default_factory=dict)


def roles_of(user: AbstractBaseUser) -> dict[str, list[Project]]:
    """The projects (not archived) where the person holds each role; a site admin holds every
    section's role on every project."""
    if user.is_superuser:
        everything = list(Project.objects.filter(archived_at__isnull=True).order_by("name"))
        return dict.fromkeys(SECTIONS, everything)
    held: dict[str, list[Project]] = {}
    for membership in (
        Membership.objects.filter(user=user, project__archived_at__isnull=True)
        .select_related("project")
        .order_by("project__name")
    ):
        held.setdefault(membership.role, []).append(membership.project)
    return held


def home_of(user: AbstractBaseUser) -> list[Section]:
    held = roles_of(user)
    sections = []
    for role in SECTIONS:
        if role not in held:
            continue
        projects = held[role]
        ids = [project.pk for project in projects]
        section = Section(role=role, label=role_words(role), projects=projects)
        section.tiles = TILES[role](user, ids)
        sections.append(section)
    return sections


def _product_owner(user: AbstractBaseUser, ids: list[int]) -> dict:
    live = registry.live_models_in(
        ids, limit=LIVE_MODELS_SHOWN, first=monitoring.models_with_open_alerts()
    )
    alerts_by_model = monitoring.open_alerts_by_model([model.pk for model, _, _ in live.rows])
    versions = {
        (v.model_id, v.version): v
        for v in registry.versions_in_stages([(model.pk, n) for model, _, n in live.rows])
    }
    verdicts = fairness.verdicts_of([v.pk for v in versions.values()])
    alert_count, alerts = monitoring.open_alerts_in(ids)
    rows = []
    for model, stage, number in live.rows:
        version = versions.get((model.pk, number))
        rows.append({
            "model": model, "stage": stage, "number": number, "version": version,
            "open_alerts": alerts_by_model.get(model.pk, 0),
            "bias_passed": verdicts.get(version.pk) if version else None,
        })  # fmt: skip
    # What the tile leaves out, per project, for links to the projects' model lists.
    shown = Counter(model.project.slug for model, _, _ in live.rows)
    more = [
        {"slug": slug, "name": name, "count": count - shown[slug]}
        for slug, name, count in live.per_project
        if count > shown[slug]
    ]
    return {
        "live": rows,
        "live_total": live.total,
        "live_more": sum(project["count"] for project in more),
        "live_more_in": more,
        "waiting": [a for a in approvals.waiting_for(user) if a.project_id in ids],
        "alert_count": alert_count,
        "alerts": alerts,
        "failing_bias": fairness.failing_reports_in(ids),
    }


def _data_scientist(user: AbstractBaseUser, ids: list[int]) -> dict:
    username = user.get_username()
    versions = registry.versions_by(username, ids)
    requests = approvals.latest_requests_of([v.pk for v in versions])
    verdicts = fairness.verdicts_of([v.pk for v in versions])
    return {
        "runs": registry.recent_runs_by(username, ids),
        "versions": [
            {"version": v, "request": requests.get(v.pk), "bias_passed": verdicts.get(v.pk)}
            for v in versions
        ],
        "comments": approvals.comments_for(user, registry.versions_of_person(username, ids), ids),
        "mentions": notify.mentions_for(user),
    }


def _ml_engineer(user: AbstractBaseUser, ids: list[int]) -> dict:
    deployment_count, deployments = delivery.deployments_in(ids)
    return {
        "active_jobs": delivery.jobs_in(ids, (Job.State.QUEUED, Job.State.RUNNING)),
        "failed_jobs": delivery.jobs_in(ids, (Job.State.FAILED,)),
        "deployment_count": deployment_count,
        "deployments": deployments,
        "retraining_runs": delivery.retraining_runs_in(ids),
    }


def _auditor(user: AbstractBaseUser, ids: list[int]) -> dict:
    day_count, events = audit.activity_in(ids, timezone.now() - timedelta(days=1))
    return {
        "events_today": day_count,
        "events": events,
        "verification": next(iter(audit.recent_verifications(1)), None),
        "checkpoint": audit.latest_checkpoint(),
        "exports": audit.exports_by(user),
    }


TILES = {
    Role.PRODUCT_OWNER: _product_owner,
    Role.DATA_SCIENTIST: _data_scientist,
    Role.ML_ENGINEER: _ml_engineer,
    Role.AUDITOR: _auditor,
}
