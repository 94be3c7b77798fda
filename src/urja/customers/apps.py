from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "urja.customers"
    label = "customers"
