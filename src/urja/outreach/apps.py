from django.apps import AppConfig


class OutreachConfig(AppConfig):
    name = "urja.outreach"
    label = "outreach"
    verbose_name = "Outreach: meetings, camps and customer meets"
