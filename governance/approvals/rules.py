"""The rules that decide a request, as plain functions of its decisions: no database here.

Services apply them under a row lock; pages and the gate API use them to explain where a
request stands.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from governance.access.roles import ROLE_CAPABILITIES, Capability, Role, role_words

# Roles that may fill an approval slot at all: those whose members may approve releases.
APPROVER_ROLES = [role for role in Role if Capability.APPROVE_RELEASE in ROLE_CAPABILITIES[role]]


@dataclass
class Slot:
    role: Role
    needed: int
    approvers: list[str] = field(default_factory=list)

    @property
    def filled(self) -> bool:
        return len(self.approvers) >= self.needed

    @property
    def missing(self) -> int:
        return max(0, self.needed - len(self.approvers))


@dataclass
class Progress:
    slots: list[Slot]
    quorum: int
    approvals: int
    rejected_by: list[str]

    @property
    def rejected(self) -> bool:
        return bool(self.rejected_by)

    @property
    def complete(self) -> bool:
        """Every slot filled and the quorum reached (gates are judged apart)."""
        return (
            not self.rejected
            and self.approvals >= self.quorum
            and all(slot.filled for slot in self.slots)
        )

    def waiting_for(self) -> list[str]:
        """What is still needed, in words: ["1 product owner", "1 more approval"]."""
        needs = [
            f"{slot.missing} {role_words(slot.role)}{'s' if slot.missing > 1 else ''}"
            for slot in self.slots
            if slot.missing
        ]
        extra = self.quorum - self.approvals - sum(slot.missing for slot in self.slots)
        if extra > 0:
            needs.append(f"{extra} more approval{'s' if extra > 1 else ''}")
        return needs


def progress(
    required: dict[str, int], quorum: int, decisions: Iterable[tuple[str, str, str]]
) -> Progress:
    """Where a request stands. `decisions` are (role, verdict, approver's name)."""
    # In the roles' own order: PostgreSQL's jsonb does not keep the keys' order.
    slots = {role.value: Slot(role, required[role.value]) for role in Role if role in required}
    approvals, rejected_by = 0, []
    for role, verdict, name in decisions:
        if role not in slots:
            continue  # a role the policy no longer asks for: it fills nothing
        if verdict == "reject":
            rejected_by.append(name)
        else:
            approvals += 1
            slots[role].approvers.append(name)
    return Progress(list(slots.values()), quorum, approvals, rejected_by)


def separation_of_duties(
    *,
    username: str,
    email: str,
    user_id: int,
    requested_by_id: int,
    run_user: str,
    card_editor_id: int | None,
) -> str | None:
    """Why this person may not approve the release, or None. The requester, the author of
    the source run (MLflow's user name, matched to the username or email) and the last editor
    of the card may not approve what they asked for or made."""
    if user_id == requested_by_id:
        return "you requested this release"
    author = run_user.strip().lower()
    if author and author in {username.lower(), (email or "").lower()}:
        return "you authored the source run"
    if card_editor_id is not None and user_id == card_editor_id:
        return "you last edited the model card"
    return None
