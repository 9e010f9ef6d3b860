"""Make every membership's guardian permissions match the role table as the code has it.

Migrations run it when the role table changes (a capability added or moved), so that people
who were members before the change get what their role now carries, and lose what it no
longer does. Idempotent.
"""

from governance.access.roles import ROLE_CAPABILITIES, Capability, Role


def regrant(apps, schema_editor) -> None:
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    membership_model = apps.get_model("access", "Membership")
    granted_model = apps.get_model("access", "ProjectUserPermission")

    project_type, _ = content_type_model.objects.get_or_create(app_label="access", model="project")
    # Permissions are normally created after migrations; a regrant needs them now.
    permissions = {}
    for capability in Capability:
        permissions[capability.value], _ = permission_model.objects.get_or_create(
            content_type=project_type,
            codename=capability.value,
            defaults={"name": capability.label},
        )
    wanted = {
        (membership.user_id, membership.project_id, permissions[capability].pk)
        for membership in membership_model.objects.all()
        for capability in ROLE_CAPABILITIES[Role(membership.role)]
    }
    have = set(granted_model.objects.values_list("user_id", "content_object_id", "permission_id"))
    granted_model.objects.bulk_create(
        granted_model(user_id=user, content_object_id=project, permission_id=permission)
        for user, project, permission in wanted - have
    )
    for user, project, permission in have - wanted:
        granted_model.objects.filter(
            user_id=user, content_object_id=project, permission_id=permission
        ).delete()
