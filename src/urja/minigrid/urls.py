"""Web (HTML) routes of the mini-grid site console, mounted at /minigrid/."""

from django.urls import path

from . import views

app_name = "minigrid"
urlpatterns = [
    path("", views.console, name="console"),
    path("recharge/", views.recharge, name="recharge"),
    path("receipt/<str:number>/", views.receipt, name="receipt"),
    path("customers/add/", views.add_customer, name="add_customer"),
    path("customers/deactivate/", views.deactivate, name="deactivate"),
    path("package-changes/", views.package_change_list, name="package_changes"),
    path("package-changes/request/", views.request_change, name="request_change"),
    path("package-changes/<str:number>/decide/", views.decide, name="decide"),
    path("water/", views.water, name="water"),
    path("appliances/", views.sell, name="sell"),
    path("appliances/plans/", views.plan_list, name="plans"),
]
