"""Admin for consumers and accounts. Status, load, numbers and contacts change only through
customers.services (the 360° page and the API), so they are read-only here."""

from django.contrib import admin

from .models import Account, AccountGroup, Consumer, Contact, KycDocument


class ContactInline(admin.TabularInline):
    model = Contact
    fields = ("kind", "value", "is_primary", "verified", "verified_at", "whatsapp_opt_in")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class KycDocumentInline(admin.TabularInline):
    model = KycDocument
    fields = ("document_code", "proof_type", "number_masked", "file", "verified", "uploaded_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class AccountInline(admin.TabularInline):
    model = Account
    fields = ("consumer_number", "category", "supply_type", "sanctioned_load", "load_unit", "status", "section")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Consumer)
class ConsumerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "applicant_type", "preferred_language", "aadhaar_masked", "created_at")
    list_filter = ("kind", "preferred_language", "applicant_type")
    search_fields = ("=id", "^name", "=contacts__value")
    readonly_fields = ("aadhaar_masked", "preferred_language", "user", "created_at")
    inlines = (AccountInline, ContactInline, KycDocumentInline)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # consumers are registered through customers.services (validation, audit)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = (
        "consumer_number",
        "consumer",
        "category",
        "supply_type",
        "sanctioned_load",
        "load_unit",
        "status",
        "section",
        "bill_cycle",
    )
    list_filter = ("status", "supply_type", "category", "area", "is_prepaid", "bill_cycle")
    search_fields = ("=consumer_number", "^consumer__name")
    list_select_related = ("consumer", "section")
    raw_id_fields = ("consumer", "feeder", "transformer", "group")
    readonly_fields = (
        "consumer_number",
        "consumer",
        "section",
        "office_path",
        "status",
        "supply_type",
        "sanctioned_load",
        "load_unit",
        "key_account_manager",
        "created_at",
    )
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request):
        return False  # accounts are opened through customers.services (number series, load rules, audit)

    def has_delete_permission(self, request, obj=None):
        return False  # accounts are never deleted: they are disconnected


@admin.register(AccountGroup)
class AccountGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "key_account_manager")
    list_filter = ("kind",)
    search_fields = ("name",)
    raw_id_fields = ("key_account_manager",)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("value", "kind", "consumer", "is_primary", "verified", "whatsapp_opt_in")
    list_filter = ("kind", "verified", "whatsapp_opt_in")
    search_fields = ("=value",)
    list_select_related = ("consumer",)
    readonly_fields = ("consumer", "kind", "value", "is_primary", "verified", "verified_at", "whatsapp_opt_in")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


@admin.register(KycDocument)
class KycDocumentAdmin(admin.ModelAdmin):
    list_display = ("consumer", "document_code", "proof_type", "number_masked", "verified", "uploaded_at")
    list_filter = ("document_code", "proof_type", "verified")
    search_fields = ("=consumer__id",)
    readonly_fields = ("consumer", "document_code", "proof_type", "number_masked", "uploaded_at")
    list_select_related = ("consumer",)

    def has_add_permission(self, request):
        return False
