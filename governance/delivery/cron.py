"""Five-field cron expressions (minute hour day-of-month month day-of-week), checked field by
field so that a mistake is named where it is, then handed to django-celery-beat."""

import re

from governance.delivery.errors import InvalidCron

FIELDS = (
    # name, lowest, highest, names allowed
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    (
        "month",
        1,
        12,
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
PART = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")


def parse(expression: str) -> dict[str, str]:
    """The five fields of `expression`, keyed as CrontabSchedule names them.

    Raises InvalidCron naming `cron` and, in the message, the field at fault.
    """
    fields = (expression or "").strip().lower().split()
    if len(fields) != len(FIELDS):
        raise InvalidCron(
            fields={
                "cron": [
                    f"Five fields are needed (minute hour day-of-month month day-of-week), "
                    f"not {len(fields)}: for example '0 3 * * mon'."
                ]
            }
        )
    problems = [
        problem
        for value, (name, low, high, names) in zip(fields, FIELDS, strict=True)
        if (problem := _problem(value, name, low, high, names))
    ]
    if problems:
        raise InvalidCron(fields={"cron": problems})
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def _problem(value: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str:
    for part in value.split(","):
        found = PART.match(part)
        if not found:
            return f"{name}: {part!r} is not a number, a range, * or a step like */5."
        if found["step"] is not None and int(found["step"]) < 1:
            return f"{name}: the step in {part!r} must be 1 or more."
        if found["range"] == "*":
            continue
        bounds = []
        for item in found["range"].split("-"):
            number = _number(item, names, low)
            if number is None:
                allowed = f"{low}-{high}" + (f" or {names[0]}…{names[-1]}" if names else "")
                return f"{name}: {item!r} is not a value ({allowed})."
            if not low <= number <= high:
                return f"{name}: {number} is out of range {low}-{high}."
            bounds.append(number)
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return f"{name}: the range {part!r} runs backwards."
    return ""


def _number(item: str, names: tuple[str, ...], low: int) -> int | None:
    if item.isdigit():
        return int(item)
    if item in names:
        return names.index(item) + low
    return None
