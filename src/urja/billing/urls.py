"""Web (HTML) routes of billing, mounted at /billing/ (API routes live in api.py)."""

from django.urls import path
from django.utils.translation import gettext_lazy

from . import views

app_name = "billing"
BACKOFFICE_NAV = [(gettext_lazy("Bill runs"), "billing:console")]
urlpatterns: list = [
    path("runs/", views.console, name="console"),
    path("runs/new/", views.create_run, name="create_run"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/rebill/", views.rebill_exceptions, name="rebill_exceptions"),
    path("runs/<int:pk>/approve/", views.approve_review, name="approve_review"),
    path("runs/<int:pk>/start/", views.start_scope, name="start_scope"),
    path("runs/<int:pk>/exceptions/<int:exception_id>/resolve/", views.resolve_exception, name="resolve_exception"),
    path("account/<str:consumer_number>/panel/", views.account_panel, name="account_panel"),
    path("bills/<str:bill_number>/pdf/", views.bill_pdf, name="bill_pdf"),
    path("bills/<str:bill_number>/", views.bill_html, name="bill_html"),
    path("verify/", views.verify, name="verify"),
    path("revisions/", views.revisions, name="revisions"),
    path("revisions/<int:revision_id>/decide/", views.decide_revision, name="decide_revision"),
    path("deposits/", views.deposits_due, name="deposits_due"),
    path("deposits/<str:consumer_number>/", views.deposit_account, name="deposit_account"),
    path("final-bills/", views.final_bills, name="final_bills"),
    path("final-bills/<str:consumer_number>/", views.final_bill_issue, name="final_bill_issue"),
]
