import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rapport.core.models import TimeStampedModel, WorkspaceOwnedModel
from rapport.tenancy.permissions import Role


class Workspace(TimeStampedModel):
    """The isolation boundary: one company's (or one brand's) customers and settings."""

    name = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("name"), name="tenancy_workspace_name_ci_unique"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EmailUserManager(UserManager):
    def _create_user(self, username, email, password, **extra_fields):
        email = self.normalize_email(email or username).lower()
        user = self.model(email=email, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(None, email, password, **extra_fields)

    def create_superuser(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(None, email, password, **extra_fields)


class User(AbstractUser):
    """A person who works in Rapport (not a customer). Signs in with an email."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = None
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    # The UI's language for this person ("" = the browser's).
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)
    # Where this person works (an IANA name, "" = the workspace's reporting zone): their
    # "today" and "overdue" for tasks.
    time_zone = models.CharField(max_length=64, blank=True)
    # The workspace this person last chose, opened first at their next sign-in.
    last_workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = EmailUserManager()

    def __str__(self) -> str:
        return self.email


class Membership(WorkspaceOwnedModel):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="tenancy_membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace_id} as {self.role}"


class Invitation(WorkspaceOwnedModel):
    """An offer of a role in a workspace, mailed to an address. The person becomes a
    member only by accepting it through the link (a single-use secret, stored as its
    SHA-256), signed in with that address or creating a login for it."""

    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    invited_by_label = models.CharField(max_length=200)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address and workspace: inviting again replaces it.
            models.UniqueConstraint(
                "workspace",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="tenancy_invitation_open_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.workspace_id} as {self.role}"

    def status_at(self, now) -> str:
        if self.accepted_at is not None:
            return self.Status.ACCEPTED
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at <= now:
            return self.Status.EXPIRED
        return self.Status.PENDING

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())


class ApiToken(WorkspaceOwnedModel):
    """A bearer token for the management API. Only its SHA-256 is stored; the token
    itself is shown once, when created."""

    name = models.CharField(max_length=100)
    role = models.CharField(max_length=20, choices=Role.choices)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


def any_origin() -> list[str]:
    return ["*"]


class Source(WorkspaceOwnedModel):
    """A data source (a website, an app, a back end, a file import), as in Segment.
    Events carry the source they came through."""

    class Kind(models.TextChoices):
        HTTP = "http", _("HTTP API")
        WEBSITE = "website", _("Website")
        MOBILE = "mobile", _("Mobile app")
        SERVER = "server", _("Server")
        IMPORT = "import", _("File import")

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.HTTP)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The web pages whose browsers may send this source's events (CORS): exact origins
    # such as "https://shop.example.com", "https://*.example.com" for its subdomains,
    # or "*" for any (the default, as Segment). Empty: no browser at all.
    allowed_origins = models.JSONField(default=any_origin, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "workspace", Lower("name"), name="tenancy_source_name_ci_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class WriteKey(WorkspaceOwnedModel):
    """A source's write key. Several may be live at once so that a key can be rotated
    without dropping events; only the SHA-256 is stored."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="write_keys")
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}…"


class AuditLogEntry(WorkspaceOwnedModel):
    """Who changed what, and who exported personal data. Written by services only."""

    actor_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A readable snapshot that survives the user's or token's deletion.
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="tenancy_audit_ws_time"),
            models.Index(fields=["workspace", "action"], name="tenancy_audit_ws_action"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_type}:{self.target_id}"


class CommerceSettings(models.Model):
    """Per workspace: what a purchase is and the currency its money is reported in. One
    definition for every app that counts money (the KPIs, RFM, CLV, exports); it was
    the segments' setting until those apps all came to read it."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    purchase_event = models.CharField(max_length=255, default="Order Completed")
    # Tried in order: the first that holds a number is the purchase's value.
    value_properties = models.JSONField(default=list)
    # ISO 4217. A purchase without `properties.currency` is in it; others are converted
    # with the workspace's exchange rates, or left out and reported.
    reporting_currency = models.CharField(max_length=3, default="USD")
    # The event that says a new customer used the key feature (activation): the
    # onboarding sub-stages and the Onboarding month programme read it.
    key_event = models.CharField(max_length=255, default="Key Feature Used")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"commerce settings of {self.workspace_id}"


class ExchangeRate(WorkspaceOwnedModel):
    """1 `currency` is worth `rate` of `reporting_currency` from `valid_from` (UTC) until
    the next rate of the same currency. `reporting_currency` is the workspace's when
    the rate was given: a later change of reporting currency leaves these unused, not
    misread."""

    currency = models.CharField(max_length=3)
    reporting_currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=24, decimal_places=10)
    valid_from = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "reporting_currency", "currency", "valid_from"],
                name="tenancy_exchangerate_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(rate__gt=0), name="tenancy_exchangerate_positive"
            ),
        ]
        ordering = ["currency", "-valid_from"]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate} {self.reporting_currency} from {self.valid_from}"
