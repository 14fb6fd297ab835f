import builtins

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower
from django.db.models.lookups import IsNull
from django.utils.translation import gettext_lazy as _
from uuid_utils.compat import uuid7


class Profile(models.Model):
    """One customer, whatever channels and devices they used. A profile merged into
    another keeps its row (`merged_into`) so that the merge can be undone."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # No constraint in the database: resolution inserts thousands of profiles a batch,
    # and a deferred check of each is time taken from it. Deleting a workspace still
    # deletes its profiles (Django's CASCADE).
    workspace = models.ForeignKey(
        "tenancy.Workspace",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # Latest value of each trait, and where and when each value came from:
    # {"plan": {"at": "2026-01-01T00:00:00+00:00", "source_id": "...", "message_id": "..."}}
    traits = models.JSONField(default=dict, blank=True)
    trait_sources = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The customer list: most recently seen first, keyset-paged on (seen, id).
            models.Index(
                fields=["workspace", "-last_seen_at", "-id"], name="profiles_ws_last_seen"
            ),
            # The two below hold only the profiles that have the value (every query names
            # one): identity resolution inserts and rewrites hundreds of thousands of
            # profiles, each write costing an entry in every index, and most profiles
            # are neither merged nor named.
            # Finding customers by the start of their name.
            models.Index(
                "workspace",
                Lower(KeyTextTransform("name", "traits")),
                name="profiles_ws_name",
                condition=Q(IsNull(KeyTextTransform("name", "traits"), False)),
            ),
            # The profiles merged into one (undoing merges, a person's export).
            models.Index(
                fields=["merged_into"],
                name="profiles_merged_into",
                condition=Q(merged_into__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return str(self.pk)


class Account(models.Model):
    """A company (B2B customer) known from `group` calls, with its parent company."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    group_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    trait_sources = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # A duplicate merged into another account keeps its row so the merge can be undone;
    # group calls for its group_id then land on the survivor.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "group_id"], name="profiles_account_unique"
            ),
        ]
        indexes = [models.Index(fields=["workspace", "name"], name="profiles_account_ws_name")]

    def __str__(self) -> str:
        return self.name or self.group_id


class AccountMerge(models.Model):
    """Two accounts joined by a person: what moved, so the merge can be undone."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    survivor = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    merged = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    # Profile ids whose membership moved, and child account ids whose parent moved.
    members = models.JSONField(default=list)
    children = models.JSONField(default=list)
    reason = models.TextField(blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    unmerged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="profiles_acctmerge_ws_time"),
        ]

    def __str__(self) -> str:
        return f"{self.merged_id} into {self.survivor_id}"


class AccountMember(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="members")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="account_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "profile"], name="profiles_member_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} in {self.account_id}"


class ConsentChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push notifications")
    PHONE = "phone", _("Phone")
    DIRECT_MAIL = "direct_mail", _("Direct mail")


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    TRANSACTIONAL = "transactional", _("Transactional")


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", _("granted")
    DENIED = "denied", _("denied")
    UNKNOWN = "unknown", _("unknown")


class ConsentChange(models.Model):
    """One statement of consent (from an event or a person), kept forever. The current
    consent of a profile is, per channel and purpose, its latest statement."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="consents")
    # The profile it was first recorded on; merges move `profile`, never this.
    origin_profile_id = models.UUIDField()
    channel = models.CharField(max_length=20, choices=ConsentChannel.choices)
    purpose = models.CharField(max_length=20, choices=ConsentPurpose.choices)
    status = models.CharField(max_length=10, choices=ConsentStatus.choices)
    at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # "event:<messageId>" or "api:<who>"
    source = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["profile", "channel", "purpose", "-at"], name="profiles_consent_latest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}/{self.purpose}: {self.status}"


class SavedView(models.Model):
    """A list as a person arranged it (columns, sort, filters) under a name: private
    to its owner, or shared with the workspace."""

    class List(models.TextChoices):
        CUSTOMERS = "customers"
        ACCOUNTS = "accounts"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    list = models.CharField(max_length=20, choices=List.choices)
    name = models.CharField(max_length=100)
    # The person who made it (None: an API token); a private view is theirs alone.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    shared = models.BooleanField(default=False)
    # builtins' list: the field above is named `list` in this class body.
    columns = models.JSONField(default=builtins.list)
    sort = models.CharField(max_length=120, blank=True)
    filters = models.JSONField(default=dict)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "list", "name"], name="profiles_savedview_ws_list"),
        ]

    def __str__(self) -> str:
        return self.name


class SavedViewDefault(models.Model):
    """The view a person's list opens with (one per list)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    list = models.CharField(max_length=20, choices=SavedView.List.choices)
    view = models.ForeignKey(SavedView, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user", "list"], name="profiles_savedview_default_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.view_id}"


class TraitEdit(models.Model):
    """A person's change to a customer's traits (from the person page or the API), kept
    for the timeline and so that recomputing the profile's traits from its events (an
    unmerge) replays it. `changes`: {name: {"from": old, "to": new}} or
    {name: {"from": old, "removed": true}}."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # The profile it was made on. A merge leaves it there: the survivor's timeline
    # reads the edits of every profile merged into it, and an unmerge needs no move.
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", db_index=False)
    changes = models.JSONField(default=dict)
    actor_label = models.CharField(max_length=200, blank=True)
    actor_user = models.ForeignKey(
        "tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["profile", "-at"], name="profiles_traitedit_time")]

    def __str__(self) -> str:
        return f"{', '.join(sorted(self.changes))} by {self.actor_label}"
