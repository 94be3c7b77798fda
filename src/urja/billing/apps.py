from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "urja.billing"
    label = "billing"
