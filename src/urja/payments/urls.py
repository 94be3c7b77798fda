"""Web (HTML) routes of payments, mounted at /payments/ (API routes live in api.py)."""

from django.urls import path
from django.utils.translation import gettext_lazy as _

from . import group_views, views

app_name = "payments"
urlpatterns = [
    path("", views.cashier, name="home"),
    path("cashier/", views.cashier, name="cashier"),
    path("cashier/lookup/", views.cashier_lookup, name="cashier_lookup"),
    path("cashier/form/<str:consumer_number>/", views.cashier_form, name="cashier_form"),
    path("cashier/pay/", views.cashier_pay, name="cashier_pay"),
    path("cashier/session/", views.cashier_session, name="cashier_session"),
    path("account/<str:consumer_number>/panel/", views.account_panel, name="account_panel"),
    path("panel/", views.home_panel, name="home_panel"),
    path("receipt/<str:number>/", views.receipt, name="receipt"),
    path("verify/", views.verify, name="verify"),
    path("pay/", views.quick_pay, name="quick_pay"),
    path("gateway/dev/<str:reference>/", views.dev_gateway, name="dev_gateway"),
    path("gateway/<str:gateway>/return/", views.gateway_return, name="gateway_return"),
    path("reports/handover/", views.handover, name="handover"),
    path("collections/", views.collections, name="collections"),
    path("imports/", views.imports, name="imports"),
    path("imports/<int:batch_id>/report.csv", views.import_report_csv, name="import_report"),
    path("prepaid/<str:consumer_number>/", views.prepaid, name="prepaid"),
    path("groups/<int:group_id>/", group_views.group_payment, name="group_payment"),
]

BACKOFFICE_NAV = [
    (_("Cashier"), "payments:cashier"),
    (_("Collections"), "payments:collections"),
    (_("Hand-over"), "payments:handover"),
]
