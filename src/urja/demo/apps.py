from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The development app: the demo utility, the month-by-month simulation and the factories every
    app's tests share. The top layer; nothing in the product imports it."""

    name = "urja.demo"
    label = "demo"
