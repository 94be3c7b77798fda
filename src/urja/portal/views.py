from django.shortcuts import render

from urja.core import regdata
from urja.network.models import CareCentre


def home(request):
    """Consumer landing page (en/hi/or): how to reach the utility. Consumer login comes later."""
    channels = regdata.load("portal/contact_channels.toml")
    centres = CareCentre.objects.select_related("office").order_by("office__path", "name")
    return render(request, "portal/home.html", {"channels": channels, "centres": centres})
