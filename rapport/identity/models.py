from django.db import models
from uuid_utils.compat import uuid7

from rapport.core.models import WorkspaceOwnedModel


class Identifier(models.Model):
    """One value of one kind (user_id, anonymous_id, email, phone, or an external id the
    workspace declares) and the live profile that holds it."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # No constraints in the database for these two: resolution inserts thousands of
    # identifiers a batch, for profiles and a workspace of the same transaction, and the
    # deferred check of each (locking its profile row) took longer than the inserts
    # (1,700 rows: 100 ms against 73). Deleting a profile or a workspace still deletes
    # their identifiers (Django's CASCADE), and erasure deletes them first.
    workspace = models.ForeignKey(
        "tenancy.Workspace",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    profile = models.ForeignKey(
        "profiles.Profile",
        on_delete=models.CASCADE,
        related_name="identifiers",
        db_constraint=False,
    )
    kind = models.CharField(max_length=64)
    value = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Value first: it is what look-ups know, and it is selective.
            models.UniqueConstraint(
                fields=["workspace", "value", "kind"], name="identity_identifier_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class IdentityRules(WorkspaceOwnedModel):
    """A workspace's rules, as in Segment Unify: the order of identifier kinds (lower
    merges first), how many values of each kind one profile may hold, external id kinds
    to read, values that never identify anyone, and the region for local phone numbers."""

    priorities = models.JSONField(default=dict, blank=True)
    limits = models.JSONField(default=dict, blank=True)
    external_kinds = models.JSONField(default=list, blank=True)
    blocked_values = models.JSONField(default=list, blank=True)
    default_phone_region = models.CharField(max_length=2, blank=True)
    # Probabilistic duplicates: pairs at or above `duplicate_min_probability` are kept
    # for review; at or above `duplicate_auto_merge_probability` (if set) they are merged
    # without a person, unless both profiles hold a different user_id.
    duplicate_min_probability = models.FloatField(default=0.9)
    duplicate_auto_merge_probability = models.FloatField(null=True, blank=True)
    # Extra traits to compare, {"trait": "name|text|email|phone|code|date|exact"}.
    duplicate_fields = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="identity_rules_one_per_workspace"),
        ]

    def __str__(self) -> str:
        return f"identity rules of {self.workspace_id}"


class ProfileMerge(WorkspaceOwnedModel):
    """Two profiles joined: what moved, so that the merge can be undone exactly."""

    survivor = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    merged = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    # [[kind, value], ...] that moved from merged to survivor
    identifiers = models.JSONField(default=list)
    automatic = models.BooleanField(default=True)
    reason = models.TextField(blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    unmerged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="identity_merge_ws_time"),
        ]

    def __str__(self) -> str:
        return f"{self.merged_id} into {self.survivor_id}"


class IdentityCase(models.Model):
    """An identifier an event carried that was not attached (a limit would have been
    broken), kept so that a person can see why."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=64)
    value = models.CharField(max_length=255)
    profile = models.ForeignKey(
        "profiles.Profile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="identity_case_ws_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value} ({self.reason})"


class Suppression(models.Model):
    """An identifier of an erased person: events carrying it are dropped. Only its
    SHA-256 is kept, so the suppression list itself holds no personal data."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=64)
    value_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "value_hash", "kind"], name="identity_suppression_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value_hash[:12]}…"


class DuplicateCandidate(WorkspaceOwnedModel):
    """Two profiles (or two accounts) that share no identifier but look like one
    customer, with Splink's match probability and the fields that agree. A person
    merges or dismisses it; a dismissed pair is not proposed again."""

    class Kind(models.TextChoices):
        PROFILE = "profile"
        ACCOUNT = "account"

    class Status(models.TextChoices):
        OPEN = "open"
        MERGED = "merged"
        DISMISSED = "dismissed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The two records' ids, the smaller first (profiles.Profile or profiles.Account).
    record_a = models.UUIDField()
    record_b = models.UUIDField()
    probability = models.FloatField()
    agreeing_fields = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    reviewed_by = models.CharField(max_length=200, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "record_a", "record_b"],
                name="identity_duplicate_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "kind", "status", "-probability"],
                name="identity_duplicate_review",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.record_a} ~ {self.record_b} ({self.probability:.3f})"
