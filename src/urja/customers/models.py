"""Consumers, their accounts (connections), contacts, KYC documents and account groups."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper

from urja.core.states import StateMachine


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    HINDI = "hi", "हिन्दी"
    ODIA = "or", "ଓଡ଼ିଆ"


class Consumer(models.Model):
    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        ORGANISATION = "organisation", "Organisation"

    name = models.CharField(max_length=160)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.PERSON)
    # applicant type from the document matrix (data/customers/document_matrix.toml)
    applicant_type = models.CharField(max_length=20, default="owner")
    guardian_name = models.CharField(max_length=160, blank=True, help_text="father's / husband's name")
    aadhaar_masked = models.CharField(max_length=16, blank=True)
    preferred_language = models.CharField(max_length=2, choices=Language.choices, default=Language.ENGLISH)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="consumer"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(Upper("name"), name="consumer_name_upper")]

    def __str__(self) -> str:
        return self.name


class AccountGroup(models.Model):
    """Parent account for government departments and industries with many connections."""

    class Kind(models.TextChoices):
        GOVERNMENT = "government", "Government"
        INDUSTRIAL = "industrial", "Industrial"
        OTHER = "other", "Other"

    name = models.CharField(max_length=160, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    key_account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="account_groups"
    )

    def __str__(self) -> str:
        return self.name


class AccountStatus(models.TextChoices):
    # opened for a new connection's demand note (issue 12): a consumer number to pay against, no
    # supply yet; not billed, not in collections; becomes active when energized
    PENDING = "pending", "Awaiting connection"
    ACTIVE = "active", "Active"
    TEMPORARILY_DISCONNECTED = "temp_disconnected", "Temporarily disconnected"
    PERMANENTLY_DISCONNECTED = "perm_disconnected", "Permanently disconnected"
    BANNED = "banned", "Banned"


ACCOUNT_STATUS = StateMachine(
    "account status",
    {
        AccountStatus.PENDING: {AccountStatus.ACTIVE, AccountStatus.PERMANENTLY_DISCONNECTED},
        AccountStatus.ACTIVE: {
            AccountStatus.TEMPORARILY_DISCONNECTED,
            AccountStatus.PERMANENTLY_DISCONNECTED,
            AccountStatus.BANNED,
        },
        AccountStatus.TEMPORARILY_DISCONNECTED: {
            AccountStatus.ACTIVE,
            AccountStatus.PERMANENTLY_DISCONNECTED,
            AccountStatus.BANNED,
        },
        AccountStatus.BANNED: {AccountStatus.ACTIVE, AccountStatus.PERMANENTLY_DISCONNECTED},
        AccountStatus.PERMANENTLY_DISCONNECTED: set(),
    },
)


class Account(models.Model):
    """A connection: one consumer number, one premises, one supply."""

    class Area(models.TextChoices):
        URBAN = "urban", "Urban"
        RURAL = "rural", "Rural"

    class LoadUnit(models.TextChoices):
        KW = "kW", "kW"
        KVA = "kVA", "kVA"

    consumer_number = models.CharField(max_length=20, unique=True)
    consumer = models.ForeignKey(Consumer, on_delete=models.PROTECT, related_name="accounts")
    premises_address = models.TextField()
    pincode = models.CharField(max_length=6, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    category = models.CharField(max_length=24)
    sub_category = models.CharField(max_length=24, default="general")
    supply_type = models.CharField(max_length=12)
    sanctioned_load = models.DecimalField(max_digits=10, decimal_places=3)
    load_unit = models.CharField(max_length=3, choices=LoadUnit.choices, default=LoadUnit.KW)
    area = models.CharField(max_length=5, choices=Area.choices, default=Area.URBAN)
    section = models.ForeignKey("network.Office", on_delete=models.PROTECT, related_name="accounts")
    # Copy of section.path: staff scope filters on it without a join.
    office_path = models.CharField(max_length=255, db_index=True, editable=False)
    feeder = models.ForeignKey("network.Feeder", null=True, blank=True, on_delete=models.PROTECT)
    transformer = models.ForeignKey("network.DistributionTransformer", null=True, blank=True, on_delete=models.PROTECT)
    minigrid_site = models.ForeignKey("network.MiniGridSite", null=True, blank=True, on_delete=models.PROTECT)
    package_code = models.CharField(max_length=24, blank=True)
    bill_cycle = models.CharField(max_length=12, default="C01")
    route = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=20, choices=AccountStatus.choices, default=AccountStatus.ACTIVE)
    is_prepaid = models.BooleanField(default=False)
    group = models.ForeignKey(AccountGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts")
    key_account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="key_accounts"
    )
    connected_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["bill_cycle", "route"]),
            models.Index(fields=["feeder", "transformer"]),
        ]

    def __str__(self) -> str:
        return f"{self.consumer_number} {self.consumer.name}" if self.consumer_id else self.consumer_number


class Contact(models.Model):
    class Kind(models.TextChoices):
        MOBILE = "mobile", "Mobile"
        EMAIL = "email", "E-mail"

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="contacts")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    value = models.CharField(max_length=254, db_index=True, help_text="E.164 for mobiles, lower-case e-mail")
    is_primary = models.BooleanField(default=True)
    verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    whatsapp_opt_in = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "kind", "value"], name="contact_unique")]

    def __str__(self) -> str:
        return self.value


class KycDocument(models.Model):
    """An uploaded document, typed by the document matrix (data/customers/document_matrix.toml)."""

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="documents")
    document_code = models.CharField(max_length=40)
    proof_type = models.CharField(max_length=40, blank=True, help_text="which of the group's 'any of'")
    number_masked = models.CharField(max_length=40, blank=True)
    file = models.FileField(upload_to="kyc/%Y/%m/", blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    verified = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.document_code} of {self.consumer_id}"
