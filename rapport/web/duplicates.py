"""Duplicates: the review queue of probable duplicate profiles and accounts, each pair
shown field by field (agreeing, disagreeing, held by one side), merged or dismissed."""

import uuid

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rapport.core.errors import InvalidInputError, NotFoundError
from rapport.identity import duplicates, selectors
from rapport.identity import services as identity_services
from rapport.identity import tasks as identity_tasks
from rapport.identity.models import DuplicateCandidate
from rapport.tenancy.pii import masked_record
from rapport.web.pages import page_query, traits_shown, workspace_page

PAIRS_PAGE = 20


def _kind(request: HttpRequest) -> str:
    kind = request.GET.get("kind") or request.POST.get("kind") or DuplicateCandidate.Kind.PROFILE
    if kind not in DuplicateCandidate.Kind.values:
        raise InvalidInputError(gettext("must be profile or account"), field="kind")
    return kind


def _status(request: HttpRequest) -> str:
    status = request.GET.get("status") or DuplicateCandidate.Status.OPEN
    if status not in DuplicateCandidate.Status.values:
        raise InvalidInputError(
            gettext("must be one of %(choices)s")
            % {"choices": ", ".join(DuplicateCandidate.Status.values)},
            field="status",
        )
    return status


def _record_shown(principal, kind: str, record: dict | None) -> dict | None:
    if record is None:
        return None  # erased, or gone since the scan
    record = masked_record(principal, record, "duplicate_record")
    traits = record["traits"]
    if kind == DuplicateCandidate.Kind.ACCOUNT:
        name = record["name"] or record["key"]
        url = reverse("web:account_detail", args=[record["id"]])
    else:
        parts = ("first_name", "firstName", "last_name", "lastName")
        name = traits.get("name") or " ".join(str(traits[k]) for k in parts if traits.get(k))
        name = name or traits.get("email") or record["key"] or _("Unnamed customer")
        url = reverse("web:customer_detail", args=[record["id"]])
    return {"id": record["id"], "key": record["key"], "name": name, "url": url}


def _value_shown(principal, field: str, value):
    if value is None or principal.can_see_pii:
        return value
    key = field.rsplit(".", 1)[-1]
    return traits_shown(principal, {key: value})[key]


@workspace_page("profiles.read")
def duplicate_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    kind, status = _kind(request), _status(request)
    candidates = selectors.duplicate_candidate_list(workspace=workspace, kind=kind, status=status)
    page = Paginator(candidates, PAIRS_PAGE).get_page(request.GET.get("page"))
    records = selectors.duplicate_records(list(page.object_list))
    rules = identity_services.identity_rules_get(workspace_id=workspace.pk)
    fields = duplicates.fields_for(kind, rules.duplicate_fields)
    pairs = []
    for candidate in page.object_list:
        a, b = records.get(candidate.record_a), records.get(candidate.record_b)
        rows = duplicates.fields_compare(
            fields,
            a["traits"] if a else {},
            b["traits"] if b else {},
            candidate.agreeing_fields,
            default_region=rules.default_phone_region or None,
        )
        for row in rows:
            row["a"] = _value_shown(principal, row["field"], row["a"])
            row["b"] = _value_shown(principal, row["field"], row["b"])
        pairs.append(
            {
                "candidate": candidate,
                "percent": probability_shown(candidate.probability),
                "a": _record_shown(principal, kind, a),
                "b": _record_shown(principal, kind, b),
                "rows": rows,
            }
        )
    context = {
        "kind": kind,
        "status": status,
        "page": page,
        "query": page_query(request),
        "pairs": pairs,
        "statuses": [
            ("open", _("To review")),
            ("merged", _("Merged")),
            ("dismissed", _("Dismissed")),
        ],
        "can_merge": principal.has_perm("profiles.merge"),
        "scan_queued": request.GET.get("scan") == "queued",
    }
    return render(request, "web/duplicates/list.html", context)


def probability_shown(probability: float) -> str:
    """A pair's probability in percent, with the digits that tell pairs apart:
    Splink's probabilities crowd just under 1 (0.9992, 0.999991), which one decimal
    rounded all to "100.0" (and the scan stored them rounded to six digits, so many
    were 1.0). A pair is never shown as certain."""
    percent = probability * 100
    for digits in (1, 2, 3, 4):
        if round(percent, digits) < 100:
            return number_format(round(percent, digits), digits)
    return "> " + number_format(99.9999, 4)


def _back(kind: str, **extra: str) -> HttpResponse:
    query = "&".join(f"{k}={v}" for k, v in {"kind": kind, **extra}.items())
    return redirect(reverse("web:duplicate_list") + "?" + query)


@workspace_page("profiles.merge")
@require_POST
def duplicate_merge(request: HttpRequest, candidate_id) -> HttpResponse:
    principal = request.principal
    candidate = selectors.duplicate_candidate_get(
        workspace=principal.workspace, candidate_id=candidate_id
    )
    reason = request.POST.get("reason", "").strip()
    if not reason:
        raise InvalidInputError(_("say why these are the same customer"), field="reason")
    survivor = request.POST.get("survivor", "a")
    if survivor not in ("a", "b"):
        raise InvalidInputError(gettext("must be a or b"), field="survivor")
    identity_services.duplicate_candidate_merge(
        candidate=candidate, reason=reason[:2000], survivor=survivor, actor=principal.actor
    )
    return _back(candidate.kind, done="merged")


@workspace_page("profiles.merge")
@require_POST
def duplicate_dismiss(request: HttpRequest, candidate_id) -> HttpResponse:
    principal = request.principal
    candidate = selectors.duplicate_candidate_get(
        workspace=principal.workspace, candidate_id=candidate_id
    )
    identity_services.duplicate_candidate_dismiss(
        candidate=candidate, reason=request.POST.get("reason", "")[:2000], actor=principal.actor
    )
    return _back(candidate.kind, done="dismissed")


@workspace_page("profiles.merge")
@require_POST
def duplicate_scan(request: HttpRequest) -> HttpResponse:
    """Look for duplicates again, in the background (a worker runs the scan)."""
    principal = request.principal
    kind = _kind(request)
    identity_tasks.duplicates_refresh.enqueue(
        workspace_id=str(principal.workspace.pk), kind=kind, actor_label=principal.actor.label
    )
    return _back(kind, scan="queued")


BULK_MERGE_MAX = 200
_FAILURES = {
    "already_reviewed": gettext_lazy("it was dismissed since"),
    "already_merged": gettext_lazy("one of them was merged since"),
    "not_found": gettext_lazy("one of them no longer exists"),
}


def _candidate_ids(request: HttpRequest) -> list[uuid.UUID]:
    raw = request.POST.getlist("candidates")
    if not raw:
        raise InvalidInputError(_("choose at least one pair"), field="candidates")
    if len(raw) > BULK_MERGE_MAX:
        raise InvalidInputError(
            gettext("at most %(bulk_merge_max)s pairs at once")
            % {"bulk_merge_max": BULK_MERGE_MAX},
            field="candidates",
        )
    try:
        return list(dict.fromkeys(uuid.UUID(value) for value in raw))
    except ValueError:
        raise InvalidInputError(gettext("not a pair id"), field="candidates") from None


@workspace_page("profiles.merge")
@require_POST
def duplicate_merge_many(request: HttpRequest) -> HttpResponse:
    """Merge the selected pairs: first a page that lists them and asks why, then (with
    `confirm`) each pair merged as if one by one, and what became of each."""
    principal = request.principal
    workspace = principal.workspace
    ids = _candidate_ids(request)
    kind = _kind(request)
    candidates = list(
        selectors.duplicate_candidate_list(workspace=workspace, kind=None, status=None).filter(
            pk__in=ids
        )
    )
    if len(candidates) != len(ids):
        raise NotFoundError(gettext("No such duplicate pair"))
    records = selectors.duplicate_records(candidates)
    names = {
        c.pk: (
            _record_shown(principal, c.kind, records.get(c.record_a)),
            _record_shown(principal, c.kind, records.get(c.record_b)),
        )
        for c in candidates
    }
    reason = request.POST.get("reason", "").strip()[:2000]
    if request.POST.get("confirm") != "yes":
        context = {
            "kind": kind,
            "reason": reason,
            "pairs": [
                {"candidate": c, "a": names[c.pk][0], "b": names[c.pk][1]} for c in candidates
            ],
        }
        return render(request, "web/duplicates/merge_many.html", context)
    results = identity_services.duplicate_candidates_merge(
        workspace=workspace, candidate_ids=ids, reason=reason, actor=principal.actor
    )
    by_id = {c.pk: c for c in candidates}
    shown = []
    for result in results:
        candidate = by_id[result.candidate_id]
        shown.append(
            {
                "candidate": candidate,
                "a": names[candidate.pk][0],
                "b": names[candidate.pk][1],
                "outcome": result.outcome,
                "why": _FAILURES.get(result.code, result.message),
            }
        )
    context = {
        "kind": kind,
        "done": shown,
        "merged": sum(r.outcome == "merged" for r in results),
        "already": sum(r.outcome == "already" for r in results),
        "failed": sum(r.outcome == "failed" for r in results),
    }
    return render(request, "web/duplicates/merge_many.html", context)
