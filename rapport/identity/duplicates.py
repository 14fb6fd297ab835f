"""Probabilistic duplicate detection with Splink (DuckDB backend, in memory).

Records are flat dicts of strings: `unique_id` and one column per field. Which of a
customer's traits fill a field is decided by `FieldSpec.paths` (the first trait present
wins), so FEBRL's `given_name` and a web shop's `firstName` both compare as a first
name. The model is trained on the records themselves each run (u by random sampling,
m by expectation maximisation, the prior from deterministic rules), as Splink's own
tutorials do; nothing is downloaded and no labels are needed.

This module knows nothing of Django: `identity.services` loads the records and keeps
the pairs.
"""

import functools
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Kinds of field, each compared its own way (see `_comparison`).
NAME, TEXT, EMAIL, PHONE, CODE, DATE, EXACT, COMPANY, DOMAIN = (
    "name",
    "text",
    "email",
    "phone",
    "code",
    "date",
    "exact",
    "company",
    "domain",
)
FIELD_KINDS = (NAME, TEXT, EMAIL, PHONE, CODE, DATE, EXACT, COMPANY, DOMAIN)
# A field of these kinds names the pairs worth comparing (blocking): equal values of
# one of them make two records candidates.
_BLOCKING_KINDS = (NAME, EMAIL, PHONE, DATE, CODE, COMPANY, DOMAIN)
# Equal values of one of these make two records very likely the same (the prior).
_DETERMINISTIC_KINDS = (EMAIL, PHONE, DOMAIN)


@dataclass(frozen=True)
class FieldSpec:
    """One compared field: its name in results, its kind, and the traits that fill it
    (dotted paths reach into objects, e.g. `address.city`)."""

    name: str
    kind: str
    paths: tuple[str, ...]
    # Blocking on this field alone is too broad (e.g. a state or a street name).
    block: bool = True


PROFILE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("first_name", NAME, ("first_name", "firstName", "given_name", "givenName")),
    FieldSpec("last_name", NAME, ("last_name", "lastName", "surname", "family_name")),
    FieldSpec("email", EMAIL, ("email",)),
    FieldSpec("phone", PHONE, ("phone", "mobile", "phone_number")),
    FieldSpec("birthday", DATE, ("birthday", "date_of_birth", "dob", "birthdate")),
    FieldSpec("national_id", CODE, ("national_id", "soc_sec_id", "ssn", "tax_id")),
    FieldSpec("street_number", CODE, ("street_number", "address.street_number"), block=False),
    FieldSpec(
        "street",
        TEXT,
        ("address.street", "street", "address_1", "address_line_1", "address1"),
        block=False,
    ),
    FieldSpec("street_2", TEXT, ("address.street2", "address_2", "address2"), block=False),
    FieldSpec("city", TEXT, ("address.city", "city", "suburb", "town"), block=False),
    FieldSpec(
        "postal_code",
        CODE,
        ("address.postal_code", "postal_code", "postcode", "zip", "zip_code"),
        block=False,
    ),
    FieldSpec("state", EXACT, ("address.state", "state", "region"), block=False),
    FieldSpec("country", EXACT, ("address.country", "country"), block=False),
)

ACCOUNT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("name", COMPANY, ("name", "company", "legal_name")),
    FieldSpec("domain", DOMAIN, ("website", "domain", "url", "email_domain")),
    FieldSpec("phone", PHONE, ("phone",)),
    FieldSpec("tax_id", CODE, ("tax_id", "vat_id", "vat", "company_number")),
    FieldSpec("street", TEXT, ("address.street", "street", "address_1"), block=False),
    FieldSpec("city", TEXT, ("address.city", "city"), block=False),
    FieldSpec(
        "postal_code", CODE, ("address.postal_code", "postal_code", "postcode", "zip"), block=False
    ),
    FieldSpec("country", EXACT, ("address.country", "country"), block=False),
    FieldSpec("industry", EXACT, ("industry",), block=False),
)

# Legal forms dropped from company names before comparing: "Acme Corp." and
# "ACME Corporation" are one name.
_LEGAL_FORMS = re.compile(
    r"\b(inc|incorporated|corp|corporation|co|company|ltd|limited|llc|llp|lp|plc|gmbh|ag|"
    r"sa|sas|sarl|srl|spa|bv|nv|oy|ab|as|kk|pty|pvt|ooo|zao|oao|holdings?|group|the)\b"
)


def _path(traits: dict, path: str) -> Any:
    value: Any = traits
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


@functools.lru_cache(maxsize=65_536)
def _phone(text: str, region: str | None) -> str:
    """A phone number as E.164 in the workspace's default region, so "020 7946 0100"
    and "+44 20 7946 0100" are one number; digits alone when it is not a number."""
    from rapport.identity.normalize import normalize_phone

    return normalize_phone(text, default_region=region or None) or re.sub(r"\D", "", text)


def _clean(kind: str, value: Any, region: str | None = None) -> str | None:
    """The comparable form of a value, or None when there is nothing to compare.
    `region`: the default region of phone numbers written without a country code."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip().lower()
    if kind == PHONE:
        text = _phone(text, region) if re.search(r"\d", text) else ""
    elif kind == DATE:
        text = re.sub(r"\D", "", text)
    elif kind == CODE:
        text = re.sub(r"[\s\-./]", "", text)
    elif kind == COMPANY:
        text = _LEGAL_FORMS.sub(" ", re.sub(r"[^\w\s]", " ", text))
        text = " ".join(text.split())
    elif kind == DOMAIN:
        text = re.sub(r"^[a-z]+://", "", text.split("@")[-1])
        text = text.split("/")[0].split(":")[0]
        text = text.removeprefix("www.")
    else:
        text = " ".join(text.split())
    return text or None


def records_build(
    items: Iterable[tuple[str, dict]],
    fields: Iterable[FieldSpec],
    *,
    default_region: str | None = None,
) -> tuple[list[dict], dict[str, str]]:
    """Splink records from (id, traits) pairs, and the label of each field: the trait
    name most records filled it from, so results speak the workspace's own words.
    `default_region`: as `_clean`."""
    fields = tuple(fields)
    records = []
    used: dict[str, Counter] = {spec.name: Counter() for spec in fields}
    for unique_id, traits in items:
        record: dict[str, Any] = {"unique_id": str(unique_id)}
        for spec in fields:
            record[spec.name] = None
            for path in spec.paths:
                value = _clean(spec.kind, _path(traits or {}, path), default_region)
                if value is not None:
                    record[spec.name] = value
                    used[spec.name][path] += 1
                    break
        records.append(record)
    labels = {
        name: counter.most_common(1)[0][0] if counter else name for name, counter in used.items()
    }
    return records, labels


def fields_for(kind: str, extra: dict[str, str] | None = None) -> tuple[FieldSpec, ...]:
    """The fields compared for profiles ("profile", with the traits a workspace added
    and their kinds) or accounts ("account")."""
    if kind == "account":
        return ACCOUNT_FIELDS
    added = tuple(
        FieldSpec(re.sub(r"\W", "_", trait).lower()[:60], field_kind, (trait,))
        for trait, field_kind in sorted((extra or {}).items())
    )
    return PROFILE_FIELDS + added


def fields_compare(
    fields: Iterable[FieldSpec],
    traits_a: dict,
    traits_b: dict,
    agreeing: Iterable[str],
    *,
    default_region: str | None = None,
) -> list[dict]:
    """Field by field, what two records hold and how they compare: "agree" (the same
    once normalised: case, spaces, a phone number's format), "similar" (different,
    but close enough that scoring counted them for the match, as "Kai" and "Kaai"),
    "disagree", or "one-sided" (only one holds a value). Fields neither holds are
    left out. `agreeing`: the fields scoring counted for the match."""
    agreeing = set(agreeing)
    rows = []
    for spec in fields:
        found = []
        for traits in (traits_a or {}, traits_b or {}):
            path = next(
                (p for p in spec.paths if _clean(spec.kind, _path(traits, p), default_region)),
                None,
            )
            found.append((path, _path(traits, path) if path else None))
        (path_a, value_a), (path_b, value_b) = found
        if path_a is None and path_b is None:
            continue
        if path_a is None or path_b is None:
            state = "one-sided"
        elif _clean(spec.kind, value_a, default_region) == _clean(
            spec.kind, value_b, default_region
        ):
            state = "agree"
        elif {spec.name, *spec.paths} & agreeing:
            state = "similar"
        else:
            state = "disagree"
        rows.append({"field": path_a or path_b, "a": value_a, "b": value_b, "state": state})
    return rows


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    probability: float
    agreeing_fields: tuple[str, ...]


def _comparison(spec: FieldSpec):
    import splink.comparison_library as cl

    if spec.kind == NAME:
        return cl.NameComparison(spec.name)
    if spec.kind in (TEXT, COMPANY):
        return cl.JaroWinklerAtThresholds(spec.name, [0.9, 0.7])
    if spec.kind == EMAIL:
        return cl.EmailComparison(spec.name)
    if spec.kind in (PHONE, CODE, DATE):
        return cl.LevenshteinAtThresholds(spec.name, [1, 2])
    return cl.ExactMatch(spec.name)


MIN_RECORDS_TO_TRAIN = 50


def pairs_score(
    records: list[dict], fields: Iterable[FieldSpec], *, min_probability: float = 0.5
) -> list[Pair]:
    """Candidate duplicate pairs among `records`, most probable first."""
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    # A record with none of the fields (an anonymous visitor, most of a big
    # workspace) can be no one's duplicate; left in, it only skews the training.
    fields = tuple(fields)
    names = [spec.name for spec in fields]
    records = [r for r in records if any(r.get(name) is not None for name in names)]
    if len(records) < 2:
        return []
    # Only fields that at least two records have can tell anything.
    fields = [
        spec for spec in fields if sum(1 for r in records if r.get(spec.name) is not None) >= 2
    ]
    blocking = [
        block_on(spec.name) for spec in fields if spec.block and spec.kind in _BLOCKING_KINDS
    ]
    names = {spec.name for spec in fields}
    if {"postal_code", "street_number"} <= names:
        blocking.append(block_on("postal_code", "street_number"))
    if {"postal_code", "street"} <= names:
        blocking.append(block_on("postal_code", "street"))
    if not fields or not blocking:
        return []
    columns = ["unique_id", *(spec.name for spec in fields)]
    records = [{c: r.get(c) for c in columns} for r in records]

    logging.getLogger("splink").setLevel(logging.ERROR)
    db_api = DuckDBAPI()
    table = db_api.register(records)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[_comparison(spec) for spec in fields],
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=True,
    )
    linker = Linker(table, settings, log_level=None)
    _train(linker, fields, len(records))
    predicted = linker.inference.predict(
        threshold_match_probability=min_probability, warning_mode="never"
    )
    pairs = []
    for row in predicted.as_record_list():
        a, b = sorted((row["unique_id_l"], row["unique_id_r"]))
        agreeing = tuple(spec.name for spec in fields if (row.get(f"mw_{spec.name}") or 0) > 0)
        pairs.append(Pair(a, b, float(row["match_probability"]), agreeing))
    pairs.sort(key=lambda p: (-p.probability, p.a, p.b))
    return pairs


def _train(linker, fields: list[FieldSpec], count: int) -> None:
    """Fit the model to the data; on too little data keep Splink's default weights."""
    from splink import block_on
    from splink.internals.exceptions import SplinkException

    by_kind = {spec.kind: spec.name for spec in reversed(fields)}
    names = [spec.name for spec in fields]
    deterministic = [block_on(by_kind[kind]) for kind in _DETERMINISTIC_KINDS if kind in by_kind]
    identifying = [spec.name for spec in fields if spec.kind in (CODE, DATE) and spec.block]
    if identifying:
        deterministic.append(block_on(*identifying))
    name_fields = [spec.name for spec in fields if spec.kind in (NAME, COMPANY)]
    if name_fields and "postal_code" in names:
        deterministic.append(block_on(*name_fields, "postal_code"))
    if count < MIN_RECORDS_TO_TRAIN:
        return
    try:
        if deterministic:
            linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
            settings = linker._settings_obj
            if not 0 < settings._probability_two_random_records_match < 1:
                # No pair matched the deterministic rules (no shared email, phone or
                # id): a prior of 0 would make every weight log(0). Expect one match.
                settings._probability_two_random_records_match = 2 / (count * (count - 1))
        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    except (SplinkException, ValueError, ZeroDivisionError):
        return
    # Each EM session learns every field but those it blocks on, so two sessions on
    # different fields learn them all.
    sessions = [
        spec.name
        for spec in fields
        if spec.block and spec.kind in (DATE, CODE, EMAIL, PHONE, DOMAIN)
    ] + [spec.name for spec in fields if spec.kind in (NAME, COMPANY)]
    if "postal_code" in names and "postal_code" not in sessions:
        sessions.insert(1, "postal_code")
    prior = linker._settings_obj._probability_two_random_records_match
    trained = 0
    for name in sessions:
        if trained == 3:
            break
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(name))
            trained += 1
        except (SplinkException, ValueError, ZeroDivisionError):
            continue
    # An EM session leaves behind the match rate inside its own block (0.99 among
    # people sharing a birthday, say) as the prior for all pairs; the prior belongs to
    # the deterministic estimate above.
    linker._settings_obj._probability_two_random_records_match = prior
