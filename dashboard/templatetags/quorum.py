from django import template

from governance.access.roles import Role

register = template.Library()


@register.filter
def role_label(value: str | None) -> str:
    """ "data_scientist" → "Data scientist"; empty for no role."""
    if not value:
        return ""
    try:
        return Role(value).label
    except ValueError:
        return value
