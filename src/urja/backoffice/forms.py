"""Forms of the staff actions on the 360° page. They only validate shape; services validate meaning."""

from django import forms
from django.utils.translation import gettext_lazy as _

from urja.backoffice.templatetags.urja_ui import STATUS_LABELS
from urja.customers.models import ACCOUNT_STATUS

LANGUAGE_CHOICES = [("en", "English"), ("hi", "हिन्दी"), ("or", "ଓଡ଼ିଆ")]


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("New status"))
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the audit trail."),
    )

    def __init__(self, *args, current: str, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = sorted(ACCOUNT_STATUS.allowed(current))
        self.fields["status"].choices = [(s, STATUS_LABELS.get(s, s)) for s in allowed]


class ContactForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=[("mobile", _("Mobile")), ("email", _("E-mail"))])
    value = forms.CharField(label=_("Mobile number or e-mail"), max_length=254)
    whatsapp_opt_in = forms.BooleanField(label=_("Agrees to WhatsApp messages"), required=False)


class ConsentCodeForm(forms.Form):
    """The code the consumer received for a contact change a staff member proposed."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    code = forms.CharField(
        label=_("Code the consumer received"),
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=_("Preferred language"), choices=LANGUAGE_CHOICES)
