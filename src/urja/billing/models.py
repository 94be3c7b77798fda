"""Billing: the append-only account ledger (bills, bill runs and deposits build on it)."""

from django.conf import settings
from django.db import models


class EntryType(models.TextChoices):
    BILL_CHARGE = "bill_charge", "Bill charge"
    PAYMENT = "payment", "Payment"
    ADJUSTMENT = "adjustment", "Adjustment"
    CREDIT_NOTE = "credit_note", "Credit note"
    DEBIT_NOTE = "debit_note", "Debit note"
    DPS = "dps", "Delayed payment surcharge"
    REBATE = "rebate", "Rebate"
    SUBSIDY = "subsidy", "Government subsidy"
    DEPOSIT = "deposit", "Security deposit"
    DEPOSIT_REFUND = "deposit_refund", "Security deposit refund"
    DEPOSIT_INTEREST = "deposit_interest", "Interest on security deposit"
    ADVANCE_INTEREST = "advance_interest", "Interest on advance payment"
    COMPENSATION = "compensation", "Compensation (standards of performance)"
    WRITE_OFF = "write_off", "Write-off"
    REVERSAL = "reversal", "Reversal"
    REFUND = "refund", "Refund"
    CHARGE = "charge", "Other charge (fees, cheque bounce)"
    INSTALMENT = "instalment", "Appliance instalment"


class LedgerEntry(models.Model):
    """One movement on an account. Positive = the consumer owes more (debit); negative = credit.

    Append-only: corrections are new entries (a reversal points at what it reverses). The
    balance of an account is the sum of its entries; nothing stores it.
    """

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="ledger")
    entry_type = models.CharField(max_length=20, choices=EntryType.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    posted_at = models.DateTimeField(db_index=True)
    # the day the amount falls due (bills) — arrears ageing counts from here
    due_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=200)
    reference_type = models.CharField(max_length=40, blank=True)
    reference_id = models.CharField(max_length=64, blank=True)
    # A retried post with the same key returns the first entry: no double posting.
    idempotency_key = models.CharField(max_length=120, unique=True, null=True, blank=True)
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    channel = models.CharField(max_length=20, default="system")

    class Meta:
        indexes = [
            models.Index(fields=["account", "posted_at"]),
            models.Index(fields=["reference_type", "reference_id"]),
        ]
        ordering = ["posted_at", "id"]

    def __str__(self) -> str:
        return f"{self.account_id} {self.entry_type} {self.amount}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise ValueError("ledger entries are append-only; post a correcting entry instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("ledger entries are append-only")
