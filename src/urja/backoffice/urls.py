from django.urls import path

from . import views

app_name = "backoffice"
urlpatterns: list = [
    path("", views.home, name="home"),
    path("find/", views.find_consumer, name="find"),
    path("portfolio/", views.portfolio, name="portfolio"),
    path("groups/<int:group_id>/", views.group_statement, name="group"),
    path("accounts/<str:consumer_number>/", views.account_360, name="account"),
    path("accounts/<str:consumer_number>/status/", views.account_status, name="account_status"),
    path("accounts/<str:consumer_number>/contacts/", views.account_contact, name="account_contact"),
    path(
        "accounts/<str:consumer_number>/contacts/confirm/",
        views.account_contact_confirm,
        name="account_contact_confirm",
    ),
    path("accounts/<str:consumer_number>/language/", views.account_language, name="account_language"),
]
