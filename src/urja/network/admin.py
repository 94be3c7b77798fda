"""Admin for the organisation and network (master data)."""

from django.contrib import admin

from . import services
from .models import CareCentre, DistributionTransformer, Feeder, MiniGridSite, Office


@admin.register(Office)
class OfficeAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "level", "parent", "phone", "opens", "closes")
    list_filter = ("level", "state")
    search_fields = ("^code", "name")
    readonly_fields = ("path",)
    autocomplete_fields = ("parent",)
    list_select_related = ("parent",)

    def get_readonly_fields(self, request, obj=None):
        # Moving an office would move the scope of its staff and accounts: not an admin edit.
        return ("path", "level", "parent") if obj else ("path",)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = {f: v for f, v in form.cleaned_data.items() if f not in ("code", "name", "level", "parent")}
        created = services.create_office(
            code=obj.code, name=obj.name, level=obj.level, parent=form.cleaned_data.get("parent"), **data
        )
        obj.pk, obj.path = created.pk, created.path
        obj._state.adding = False


@admin.register(CareCentre)
class CareCentreAdmin(admin.ModelAdmin):
    list_display = ("name", "office", "officer_in_charge", "phone", "is_anubhav_kendra")
    list_filter = ("is_anubhav_kendra",)
    search_fields = ("name", "address", "officer_in_charge")
    autocomplete_fields = ("office",)
    list_select_related = ("office",)


@admin.register(Feeder)
class FeederAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "office", "voltage_kv")
    list_filter = ("voltage_kv",)
    search_fields = ("^code", "name")
    autocomplete_fields = ("office",)
    list_select_related = ("office",)


@admin.register(DistributionTransformer)
class DistributionTransformerAdmin(admin.ModelAdmin):
    list_display = ("code", "feeder", "capacity_kva")
    search_fields = ("^code", "^feeder__code")
    autocomplete_fields = ("feeder",)
    list_select_related = ("feeder",)


@admin.register(MiniGridSite)
class MiniGridSiteAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "village", "district", "capacity_kw", "storage_kwh", "operator")
    search_fields = ("^code", "name", "village")
    autocomplete_fields = ("office",)
