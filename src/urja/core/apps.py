from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "urja.core"
    label = "core"
