"""What the propensity models know of a customer and of the request: predictor names,
one per fact, hashed to weights by learner.predictor_index.

Categorical facts name their value (`stage=active`, `rfm=champions`, `t.plan=gold`);
numbers name their bucket on a doubling scale (`clv~7` for 64-127), so a model learns a
shape without a scale fitted per workspace. Traits that identify a person (email,
names, phone, address, ids) are never predictors: they would teach nothing that
generalises, and a model is not a place for personal data.
"""

import math
from collections.abc import Iterable

# Trait names (lower-cased, without separators) that identify rather than describe.
_IDENTIFYING = frozenset(
    {
        "email",
        "phone",
        "name",
        "firstname",
        "lastname",
        "fullname",
        "username",
        "address",
        "street",
        "postcode",
        "zip",
        "zipcode",
        "userid",
        "id",
        "anonymousid",
        "birthday",
        "dateofbirth",
        "dob",
        "avatar",
        "ip",
        "password",
    }
)
MAX_TRAITS = 40
MAX_SEGMENTS = 50
MAX_CONTEXT = 10
MAX_VALUE_CHARS = 40


def _bucket(number: float) -> int:
    """Doubling buckets: 0 → 0, 1 → 1, 2-3 → 2, 4-7 → 3 ...; negatives mirrored."""
    if number == 0 or not math.isfinite(number):
        return 0
    sign = 1 if number > 0 else -1
    return sign * (int(math.log2(abs(number))) + 1 if abs(number) >= 1 else 0)


def _value_name(prefix: str, key: str, value) -> str | None:
    if isinstance(value, bool):
        return f"{prefix}{key}={'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"{prefix}{key}~{_bucket(float(value))}"
    if isinstance(value, str) and value and len(value) <= MAX_VALUE_CHARS:
        return f"{prefix}{key}={value.strip().lower()}"
    return None


def _identifying(key: str) -> bool:
    return "".join(ch for ch in key.lower() if ch.isalnum()) in _IDENTIFYING


def predictor_names(
    *,
    traits: dict,
    stage: str | None,
    rfm_cell: str | None,
    segment_ids: Iterable,
    churn_band: str | None,
    clv: float | None,
    channel: str,
    placement: str,
    context: dict,
) -> list[str]:
    names = [f"ch={channel}"]
    if placement:
        names.append(f"pl={placement}")
    if stage:
        names.append(f"stage={stage}")
    if rfm_cell:
        names.append(f"rfm={rfm_cell}")
    if churn_band:
        names.append(f"churn={churn_band}")
    if clv is not None:
        names.append(f"clv~{_bucket(float(clv))}")
    for n, segment_id in enumerate(segment_ids):
        if n >= MAX_SEGMENTS:
            break
        names.append(f"seg={segment_id}")
    taken = 0
    for key in sorted(traits or {}):
        if taken >= MAX_TRAITS:
            break
        if _identifying(key):
            continue
        name = _value_name("t.", key, traits[key])
        if name is not None:
            names.append(name)
            taken += 1
    context = context or {}
    device = context.get("device")
    if isinstance(device, dict):
        device = device.get("type")
    if isinstance(device, str) and device:
        names.append(f"dev={device.strip().lower()[:MAX_VALUE_CHARS]}")
    taken = 0
    for key in sorted(context):
        if taken >= MAX_CONTEXT or key == "device" or _identifying(key):
            continue
        name = _value_name("ctx.", key, context[key])
        if name is not None:
            names.append(name)
            taken += 1
    return names
