import pytest

from urja.network.models import CareCentre


@pytest.mark.parametrize(
    ("language", "phrase"),
    [("en", "Electricity customer care"), ("hi", "बिजली ग्राहक सेवा"), ("or", "ବିଦ୍ୟୁତ ଗ୍ରାହକ ସେବା")],
)
def test_portal_landing_in_three_languages(client, offices, language, phrase):
    CareCentre.objects.create(
        office=offices["division1"],
        name="BED Balasore",
        address="Artung, Balia, Balasore - 756001",
        officer_in_charge="Abhishek Boitei",
    )
    client.cookies["django_language"] = language
    html = client.get("/portal/").content.decode()
    assert phrase in html
    assert f'lang="{language}"' in html
    # contact channels of seed 003, from data/portal/contact_channels.toml
    assert "1912" in html and "7777004758" in html
    assert "Abhishek Boitei" in html
