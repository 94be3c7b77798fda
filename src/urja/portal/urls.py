from django.urls import path

from . import views

app_name = "portal"
urlpatterns: list = [
    path("", views.landing, name="home"),
    path("login/", views.login, name="login"),
    path("login/code/", views.login_code, name="login_code"),
    path("accounts/", views.accounts, name="accounts"),
    path("logout/", views.logout, name="logout"),
    path("bills/", views.bills, name="bills"),
    path("bills/<str:bill_number>/", views.bill, name="bill"),
    path("bills/<str:bill_number>/pdf/", views.bill_pdf, name="bill_pdf"),
    path("usage/", views.usage, name="usage"),
    path("payments/", views.payments_list, name="payments"),
    path("receipts/<str:number>/", views.receipt, name="receipt"),
    path("pay/", views.pay, name="pay"),
    path("pay/<str:reference>/", views.order, name="order"),
    path("profile/", views.profile, name="profile"),
    path("complaints/", views.complaints, name="complaints"),
    path("connections/", views.connections, name="connections"),
    path("changes/", views.changes, name="changes"),
    path("connections/apply/", views.apply, name="apply"),
    path("connections/<str:number>/", views.application, name="application"),
    path("complaints/<str:number>/", views.complaint, name="complaint"),
]
