import json

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from governance.access.roles import Role, role_words

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


_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.simple_tag
def chart(figure: dict | None, element_id: str, label: str = "Chart") -> str:
    """A place for a Plotly figure and its data; static/js/charts.js draws it."""
    if not figure:
        return ""
    data = json.dumps(figure, cls=DjangoJSONEncoder).translate(_JSON_ESCAPES)
    return format_html(
        '<div id="{}" class="plot" role="img" aria-label="{}"></div>'
        '<script type="application/json" class="chart" data-target="{}">{}</script>',
        element_id,
        label,
        element_id,
        mark_safe(data),  # noqa: S308 (escaped above, as django's json_script does)
    )


@register.filter
def metric(value: object) -> str:
    """A metric for people: 4 significant digits; NaN and infinities by name."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


@register.filter
def duration_s(seconds: object) -> str:
    """Seconds for people: "0.42 s", "3 min 5 s", "2 h 10 min"."""
    if not isinstance(seconds, int | float):
        return "—"
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def pretty_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def get_item(mapping: dict, key: str) -> object:
    return mapping.get(key) if isinstance(mapping, dict) else None


# What Markdown in comments may become: text formatting, lists, code, quotes and links.
MARKDOWN_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h3", "h4",
    "hr", "del", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


@register.filter
def markdown(text: str) -> str:
    """Markdown rendered, then sanitised: no raw HTML, scripts, styles or unsafe links survive.
    Headings above h3 become plain text, so a comment cannot outrank the page."""
    import markdown as markdown_lib
    import nh3

    html = markdown_lib.markdown(text, extensions=["fenced_code", "tables", "sane_lists"])
    return mark_safe(  # noqa: S308 (sanitised just here)
        nh3.clean(
            html,
            tags=MARKDOWN_TAGS,
            attributes={"a": {"href", "title"}},
            url_schemes={"http", "https", "mailto"},
            link_rel="nofollow noopener noreferrer",
        )
    )


register.filter("role_words", role_words)
