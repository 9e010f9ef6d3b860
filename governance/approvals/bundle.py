"""The release evidence bundle: one zip holding what a release was judged on and what happened
to it, with a manifest of digests; and the offline check of such a zip.

`write` reads through selectors and streams the zip to a file object. `check_bundle` and
`verify` read a zip and touch no database (`verify_bundle` runs them far from Quorum): they
recompute the evidence's hash with evidence.py and each audit event's hash with audit/chain.py,
the code that made them.

Other areas add files with `register_part(name, build)` in their AppConfig's `ready()`: `build`
takes the request and returns {filename: bytes}, which go into every bundle made afterwards,
listed in the manifest like the rest. This area registers no part beyond its own files.
"""

import hashlib
import json
import re
import tomllib
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from governance.approvals import selectors
from governance.approvals.errors import UnreadableBundle
from governance.approvals.evidence import evidence_hash
from governance.approvals.models import ApprovalRequest, PolicyVersion
from governance.audit import exports
from governance.audit import selectors as audit
from governance.audit.chain import FIELDS, GENESIS, event_hash
from governance.audit.errors import InvalidCheckpoint
from governance.audit.verification import COLUMNS, parse_checkpoint
from governance.registry import cards
from governance.registry import selectors as registry

FORMAT = "quorum-release-bundle"
FORMAT_VERSION = 1

MANIFEST = "manifest.json"
REQUEST = "request.json"
POLICY = "policy.json"
GATES = "gates.json"
DECISIONS = "decisions.json"
COMMENTS = "comments.json"
CARD_MARKDOWN = "model_card.md"
CARD_JSON = "model_card.json"
EVENTS = "audit_events.jsonl"
CHECKPOINT = "checkpoint.txt"
# Every bundle holds these; checkpoint.txt only once the chain has been verified.
CORE = (REQUEST, POLICY, GATES, DECISIONS, COMMENTS, CARD_MARKDOWN, CARD_JSON, EVENTS)

EVIDENCE_RECIPE = (
    "evidence_sha256 = SHA-256 of the UTF-8 JSON of `evidence`, keys sorted, separators "
    "',' and ':', non-ASCII unescaped."
)
# A part's files: lower-case names, folders allowed, nothing that climbs out of the zip.
PART_FILE = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# What the check reads whole (the manifest, the request); the rest is streamed.
MAX_JSON = 64 * 2**20
# A zip declaring more than this, unpacked, is not a bundle Quorum made.
MAX_UNPACKED = 4 * 2**30
CHUNK = 2**16


# Parts added by other areas

Part = Callable[[ApprovalRequest], dict[str, bytes]]
PARTS: dict[str, Part] = {}


def register_part(name: str, build: Part) -> None:
    """Add `build(approval)`'s files to every bundle. Raises ValueError for a name taken."""
    if PARTS.get(name, build) is not build:
        raise ValueError(f"a bundle part {name!r} is already registered")
    PARTS[name] = build


# Making a bundle


@dataclass(frozen=True)
class Written:
    manifest: dict
    manifest_sha256: str


@dataclass(frozen=True)
class ExportedBundle:
    """A bundle made for someone: the zip itself, the name to save it under, its manifest."""

    filename: str
    content: bytes
    manifest: dict
    manifest_sha256: str


def filename_of(approval: ApprovalRequest) -> str:
    """`release-<pk>-<model>-v<n>-<stage>.zip`, the model's name reduced to safe characters."""
    model = SAFE_NAME.sub("-", approval.version.model.name).strip("-.") or "model"
    return f"release-{approval.pk}-{model}-v{approval.version.version}-{approval.stage}.zip"


def write(approval: ApprovalRequest, *, made_by: str, destination: BinaryIO) -> Written:
    """Write the bundle of `approval` as a zip to `destination` (which need not seek) and
    return its manifest. Reads the request afresh with its policy, decisions, comments, card,
    audit events (up to the chain's head as it stood at the start) and latest checkpoint:
    about fifteen queries, plus one per thousand events."""
    made_at = timezone.now()
    verified = audit.latest_checkpoint()
    through = audit.head_seq()
    approval = selectors.approval_of(approval.project, approval.pk)
    version = approval.version
    comments = _comments(approval)
    card = registry.card_of(version)
    sections, revision = (card.sections, card.revision) if card else ({}, 0)
    facts = registry.facts_of(version)
    decisions = sorted(approval.decisions.all(), key=lambda d: (d.at, d.pk))
    files = {
        REQUEST: _json(_request(approval)),
        POLICY: _json(_policy(approval.policy_version)),
        GATES: _json(
            {"checked_at": _time(approval.gates_checked_at), "results": approval.gate_results}
        ),
        DECISIONS: _json(
            [
                {
                    "approver": d.approver.get_username(),
                    "role": d.role,
                    "verdict": d.verdict,
                    "comment": d.comment,
                    "at": _time(d.at),
                }
                for d in decisions
            ]
        ),
        COMMENTS: _json(comments),
        CARD_MARKDOWN: cards.to_markdown(sections, facts, revision).encode(),
        CARD_JSON: _json(cards.to_json(sections, facts, revision)),
        EVENTS: b"".join(_event_lines(approval, [c["id"] for c in comments], through)),
    }
    if verified is not None:
        files[CHECKPOINT] = f"{verified.checkpoint}\n".encode()
    parts = {}
    for name, build in PARTS.items():
        added = build(approval)
        for filename, data in added.items():
            _check_part_file(name, filename, data, files)
        files.update(added)
        parts[name] = sorted(added)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "request": approval.pk,
        "project": approval.project.slug,
        "model": version.model.name,
        "version": version.version,
        "stage": approval.stage,
        "made_at": _time(made_at),
        "made_by": made_by,
        "quorum_version": quorum_version(),
        "audit_through_seq": through,
        "checkpoint": None
        if verified is None
        else {
            "seq": verified.head_seq,
            "hash": verified.head_hash,
            "verified_at": _time(verified.finished_at),
            "verification": verified.pk,
        },
        "notes": []
        if verified is not None
        else ["No verification of the audit chain has passed yet: there is no checkpoint.txt."],
        "model_card_revision": revision,
        "parts": parts,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in files.items()
        },
        "recipes": {"evidence_sha256": EVIDENCE_RECIPE, "audit_event_hash": exports.HASH_RECIPE},
    }
    manifest_bytes = _json(manifest)
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*files.items(), (MANIFEST, manifest_bytes)]:
            archive.writestr(_entry(name, made_at), data)
    return Written(manifest, hashlib.sha256(manifest_bytes).hexdigest())


def _request(approval: ApprovalRequest) -> dict:
    return {
        "id": approval.pk,
        "project": approval.project.slug,
        "model": approval.version.model.name,
        "version": approval.version.version,
        "stage": approval.stage,
        "state": approval.state,
        "requested_by": approval.requested_by.get_username(),
        "note": approval.note,
        "opened_at": _time(approval.opened_at),
        "expires_at": _time(approval.expires_at),
        "closed_at": _time(approval.closed_at),
        "outcome_note": approval.outcome_note,
        "alias": {
            "state": approval.alias_state,
            "attempts": approval.alias_attempts,
            "error": approval.alias_error,
            "moved_at": _time(approval.alias_moved_at),
        },
        "policy_version": approval.policy_version.number,
        "evidence": approval.evidence,
        "evidence_sha256": approval.evidence_hash,
    }


def _policy(terms: PolicyVersion) -> dict:
    return {
        "stage": terms.policy.stage,
        "number": terms.number,
        "required": terms.required,
        "quorum": terms.quorum,
        "open_days": terms.open_days,
        "gates": terms.gates,
        "guard": terms.guard,
        "note": terms.note,
        "created_by": terms.created_by.get_username() if terms.created_by else None,
        "created_at": _time(terms.created_at),
    }


def _comments(approval: ApprovalRequest) -> list[dict]:
    """Oldest thread first, each followed by its answers; `parent` names the thread."""
    flat = []
    for top in selectors.comments_on(approval=approval):
        flat += [top, *top.thread]
    return [
        {
            "id": c.pk,
            "author": c.author.get_username(),
            "at": _time(c.created_at),
            "body": c.body,
            "parent": c.parent_id,
            "mentions": c.mentions,
        }
        for c in flat
    ]


def _event_lines(
    approval: ApprovalRequest, comment_ids: list[int], through: int
) -> Iterator[bytes]:
    """The events about the request, its comments and its model version, oldest first, each
    with every stored column: enough to recompute its hash."""
    version = approval.version
    targets = {
        "approvalrequest": [str(approval.pk)],
        "modelversion": [f"{version.model.name}/{version.version}"],
        "comment": [str(pk) for pk in comment_ids],
    }
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for row in exports.iter_rows(audit.events_about(targets, through=through)):
        yield (encode(dict(zip(COLUMNS, row, strict=True))) + "\n").encode()


def _check_part_file(part: str, filename: str, data: object, files: dict[str, bytes]) -> None:
    if not PART_FILE.match(filename) or ".." in filename.split("/"):
        raise ValueError(f"bundle part {part!r}: {filename!r} is not a plain lower-case path")
    if filename in files or filename == MANIFEST:
        raise ValueError(f"bundle part {part!r}: {filename} is already in the bundle")
    if not isinstance(data, bytes):
        raise ValueError(f"bundle part {part!r}: {filename} is {type(data).__name__}, not bytes")


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _entry(name: str, at: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=at.astimezone(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


@cache
def quorum_version() -> str | None:
    """Quorum's version as pyproject.toml states it (the project is not installed as a
    package), or None where that file is not deployed."""
    try:
        with (Path(settings.BASE_DIR) / "pyproject.toml").open("rb") as handle:
            version = tomllib.load(handle)["project"]["version"]
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return None
    return str(version)


# Checking a bundle, offline


@dataclass(frozen=True)
class Check:
    name: str
    problems: tuple[str, ...] = ()
    skipped: str = ""  # why the check could not run: another check reports the cause

    @property
    def passed(self) -> bool:
        return not self.problems and not self.skipped


@dataclass(frozen=True)
class Report:
    checks: list[Check]
    manifest_sha256: str

    @property
    def problems(self) -> list[str]:
        return [problem for check in self.checks for problem in check.problems]


def verify(path: str | Path) -> list[str]:
    """Every problem found in the bundle at `path`; none means it is intact. Raises
    UnreadableBundle for a file that is not a readable zip. Needs no database."""
    return check_bundle(path).problems


def check_bundle(path: str | Path) -> Report:
    """Run every check on the bundle at `path`. Raises UnreadableBundle. Needs no database.

    It proves the bundle consistent with itself: files against the manifest, evidence against
    its hash and the audit events' record of it, each event against its own hash and its
    neighbours. That the events are the trail's own is proved against the live chain or a
    checkpoint with `audit_verify`.
    """
    name = Path(path).name
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise UnreadableBundle(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise UnreadableBundle(f"{path} is a folder, not a bundle.") from None
    except OSError as error:
        raise UnreadableBundle(f"{path} cannot be read: {error.strerror or error}.") from None
    except zipfile.BadZipFile:
        raise UnreadableBundle(
            f"{name} is not a zip file (or its end was cut off): nothing in it can be checked."
        ) from None
    try:
        with archive:
            contents = _Contents(archive, name)
            return Report([check(contents) for check in CHECKS], contents.manifest_sha256)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise UnreadableBundle(f"{name} is a damaged zip: {error}.") from None
    except (NotImplementedError, RuntimeError) as error:
        # An encrypted member or an unknown compression: not something Quorum writes.
        raise UnreadableBundle(f"{name} cannot be read: {error}.") from None


class _Event:
    """One line of audit_events.jsonl, already checked to hold every column."""

    def __init__(self, line: int, fields: dict):
        self.line, self.fields = line, fields
        self.seq: int = fields["seq"]
        self.action: str = fields["action"]
        self.target_kind: str = fields["target_kind"]
        self.target_id: str = fields["target_id"]
        self.payload: str = fields["payload"]
        self.prev_hash: str = fields["prev_hash"]
        self.hash: str = fields["hash"]


@dataclass
class _Contents:
    """What the checks need from the zip, each piece read once."""

    archive: zipfile.ZipFile
    name: str
    names: list[str] = field(init=False)
    manifest: dict | None = field(init=False)
    manifest_problem: str = field(init=False)
    manifest_sha256: str = field(init=False)
    request: dict | None = field(init=False)
    request_problem: str = field(init=False)
    events: list[_Event] = field(init=False)
    event_problems: list[str] = field(init=False)

    def __post_init__(self) -> None:
        infos = self.archive.infolist()
        if sum(info.file_size for info in infos) > MAX_UNPACKED:
            raise UnreadableBundle(f"{self.name} unpacks to more than a bundle ever holds.")
        self.names = [info.filename for info in infos]
        self.manifest_sha256 = self.digest(MANIFEST)[0] if MANIFEST in self.names else ""
        self.manifest, self.manifest_problem = self._json(MANIFEST)
        self.request, self.request_problem = self._json(REQUEST)
        self.events, self.event_problems = self._events()

    @property
    def present(self) -> set[str]:
        return set(self.names) - {MANIFEST}

    @property
    def listed(self) -> dict | None:
        files = self.manifest.get("files") if self.manifest else None
        return files if isinstance(files, dict) else None

    def digest(self, name: str) -> tuple[str, int]:
        sha, size = hashlib.sha256(), 0
        with self.archive.open(name) as handle:
            while chunk := handle.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
        return sha.hexdigest(), size

    def _json(self, name: str) -> tuple[dict | None, str]:
        if name not in self.names:
            return None, f"{name} is missing"
        with self.archive.open(name) as handle:
            data = handle.read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            return None, f"{name} is larger than {MAX_JSON // 2**20} MiB"
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            return None, f"{name} is not valid JSON: {error}"
        if not isinstance(value, dict):
            return None, f"{name} is not a JSON object"
        return value, ""

    def _events(self) -> tuple[list[_Event], list[str]]:
        if EVENTS not in self.names:
            return [], []
        events, problems = [], []
        with self.archive.open(EVENTS) as raw:
            for number, line in enumerate(raw, start=1):
                if not line.strip():
                    continue
                try:
                    fields = json.loads(line.decode("utf-8"))
                except ValueError as error:  # UnicodeDecodeError included
                    problems.append(f"{EVENTS} line {number} is not valid JSON: {error}")
                    continue
                why = _malformed(fields)
                if why:
                    problems.append(f"{EVENTS} line {number} is not an audit event: {why}")
                    continue
                events.append(_Event(number, fields))
        return events, problems


def _malformed(fields: object) -> str:
    if not isinstance(fields, dict):
        return "not a JSON object"
    lacking = [name for name in COLUMNS if name not in fields]
    if lacking:
        return f"it lacks {', '.join(lacking)}"
    if isinstance(fields["seq"], bool) or not isinstance(fields["seq"], int):
        return "its seq is not a whole number"
    text = ("action", "target_kind", "target_id", "payload", "prev_hash", "hash")
    if not all(isinstance(fields[name], str) for name in text):
        return f"its {', '.join(text)} are not all text"
    return ""


def _short(digest: object) -> str:
    return f"{digest[:16]}…" if isinstance(digest, str) and len(digest) > 16 else repr(digest)


def _check_manifest(contents: _Contents) -> Check:
    name = "manifest.json is readable and of a format this Quorum reads"
    manifest = contents.manifest
    if manifest is None:
        return Check(name, (contents.manifest_problem,))
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append(f"manifest.json says format {manifest.get('format')!r}, not {FORMAT!r}")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        problems.append(f"manifest.json has no format version (found {version!r})")
    elif version > FORMAT_VERSION:
        problems.append(
            f"the bundle has format version {version}; this Quorum reads up to {FORMAT_VERSION}"
        )
    if contents.listed is None:
        problems.append("manifest.json does not list the files")
    return Check(name, tuple(problems))


def _check_listing(contents: _Contents) -> Check:
    name = "the manifest lists exactly the files in the bundle"
    if contents.listed is None:
        return Check(name, skipped="no list of files to compare with")
    listed, present = set(contents.listed), contents.present
    problems = [
        f"the bundle holds {duplicate} more than once"
        for duplicate in sorted({n for n in contents.names if contents.names.count(n) > 1})
    ]
    problems += [
        f"{n} is listed in the manifest but missing from the bundle"
        for n in sorted(listed - present)
    ]
    problems += [
        f"{n} is in the bundle but not listed in the manifest" for n in sorted(present - listed)
    ]
    problems += [
        f"{n} is missing: every bundle holds it" for n in CORE if n not in listed | present
    ]
    recorded = contents.manifest.get("checkpoint")
    if recorded and CHECKPOINT not in listed | present:
        problems.append(f"{CHECKPOINT} is missing, though the manifest records a checkpoint")
    return Check(name, tuple(problems))


def _check_digests(contents: _Contents) -> Check:
    name = "every file's SHA-256 and size match the manifest"
    listed = contents.listed
    if listed is None:
        return Check(name, skipped="no list of files to compare with")
    problems = []
    for filename in sorted(set(listed) & contents.present):
        entry = listed[filename] if isinstance(listed[filename], dict) else {}
        digest, size = contents.digest(filename)
        if entry.get("sha256") != digest:
            problems.append(
                f"{filename} was changed: its SHA-256 is {_short(digest)} ({size} bytes), "
                f"the manifest says {_short(entry.get('sha256'))} ({entry.get('size')!r} bytes)"
            )
        elif entry.get("size") != size:
            problems.append(f"{filename} is {size} bytes, the manifest says {entry.get('size')!r}")
    return Check(name, tuple(problems))


def _evidence(contents: _Contents) -> tuple[dict | None, str]:
    if contents.request is None:
        return None, contents.request_problem
    evidence = contents.request.get("evidence")
    if not isinstance(evidence, dict):
        return None, f"{REQUEST} holds no evidence"
    return evidence, ""


def _check_evidence(contents: _Contents) -> Check:
    name = "the evidence hashes to request.json's evidence_sha256"
    if REQUEST not in contents.names:
        return Check(name, skipped=f"{REQUEST} is missing")
    evidence, why = _evidence(contents)
    if evidence is None:
        return Check(name, (why,))
    stated, actual = contents.request.get("evidence_sha256"), evidence_hash(evidence)
    if stated != actual:
        return Check(
            name,
            (
                f"the evidence in {REQUEST} was changed: it hashes to {_short(actual)}, "
                f"but its evidence_sha256 says {_short(stated)}",
            ),
        )
    return Check(name)


def _check_event_hashes(contents: _Contents) -> Check:
    name = "every audit event's hash recomputes from its fields"
    if EVENTS not in contents.names:
        return Check(name, skipped=f"{EVENTS} is missing")
    changed = [
        f"audit event #{event.seq} ({event.action}) was changed: its fields no longer hash to "
        f"its recorded hash {_short(event.hash)}"
        for event in contents.events
        if event_hash({key: event.fields[key] for key in FIELDS}) != event.hash
    ]
    return Check(name, (*contents.event_problems, *changed))


def _check_links(contents: _Contents) -> Check:
    name = "audit events are in order, each chained to the one before where their seqs follow"
    if EVENTS not in contents.names:
        return Check(name, skipped=f"{EVENTS} is missing")
    events = contents.events
    problems = []
    if events and events[0].seq == 1 and events[0].prev_hash != GENESIS:
        problems.append("audit event #1 does not start the chain: its prev_hash is not 64 zeros")
    for previous, event in pairwise(events):
        if event.seq <= previous.seq:
            problems.append(
                f"audit event #{event.seq} (line {event.line}) comes after #{previous.seq}: "
                "the events are out of order or repeated"
            )
        elif event.seq == previous.seq + 1 and event.prev_hash != previous.hash:
            problems.append(
                f"audit event #{event.seq} is not chained to #{previous.seq}: its prev_hash "
                f"{_short(event.prev_hash)} is not #{previous.seq}'s hash {_short(previous.hash)}"
            )
    return Check(name, tuple(problems))


def _check_opened(contents: _Contents) -> Check:
    name = "the approval.opened event recorded the evidence's hash"
    evidence, why = _evidence(contents)
    if evidence is None:
        return Check(name, skipped=why)
    request_id = contents.request.get("id")
    problems = []
    if contents.manifest is not None and contents.manifest.get("request") != request_id:
        problems.append(
            f"{REQUEST} is about request #{request_id}, the manifest about "
            f"#{contents.manifest.get('request')}"
        )
    opened = [
        event
        for event in contents.events
        if event.action == "approval.opened"
        and event.target_kind == "approvalrequest"
        and event.target_id == str(request_id)
    ]
    if not opened:
        problems.append(f"{EVENTS} holds no approval.opened event of request #{request_id}")
    actual = evidence_hash(evidence)
    for event in opened:
        try:
            recorded = json.loads(event.payload).get("evidence_sha256")
        except (ValueError, AttributeError):
            recorded = None
        if recorded != actual:
            problems.append(
                f"audit event #{event.seq} (approval.opened) recorded the evidence's SHA-256 as "
                f"{_short(recorded)}, but the evidence in {REQUEST} hashes to {_short(actual)}"
            )
    return Check(name, tuple(problems))


def _check_checkpoint(contents: _Contents) -> Check:
    name = "checkpoint.txt agrees with the manifest and the events"
    if CHECKPOINT not in contents.names:
        return Check(
            name, skipped="no checkpoint: the chain had not been verified when this was made"
        )
    with contents.archive.open(CHECKPOINT) as handle:
        text = handle.read(1000).decode("utf-8", "replace")
    try:
        seq, digest = parse_checkpoint(text)
    except InvalidCheckpoint:
        return Check(name, (f"{CHECKPOINT} does not read SEQ:HASH",))
    problems = []
    recorded = contents.manifest.get("checkpoint") if contents.manifest else None
    if not isinstance(recorded, dict) or (recorded.get("seq"), recorded.get("hash")) != (
        seq,
        digest,
    ):
        problems.append(f"{CHECKPOINT} says #{seq}, which the manifest does not record")
    problems += [
        f"audit event #{seq} differs from the checkpoint: its hash is {_short(event.hash)}, "
        f"the checkpoint says {_short(digest)}"
        for event in contents.events
        if event.seq == seq and event.hash != digest
    ]
    return Check(name, tuple(problems))


CHECKS = (
    _check_manifest,
    _check_listing,
    _check_digests,
    _check_evidence,
    _check_event_hashes,
    _check_links,
    _check_opened,
    _check_checkpoint,
)
