import pytest

from urja.connections import services
from urja.demo.testing import staff_user
from urja.servicedesk import catalogue
from urja.servicedesk import clock as sd_clock
from urja.tariffs import services as tariffs

BALASORE = ("21.494500", "86.933200")


@pytest.fixture
def loaded(db, settings):
    for path in sorted((settings.DATA_DIR / "tariffs").glob("oerc_rst_*.toml")):  # the Odisha orders
        tariffs.load_file(path=path)
    for path in catalogue.default_files():
        catalogue.load_file(path)
    catalogue.clear_cache()
    yield
    sd_clock.reset()


@pytest.fixture
def engineer(offices):
    return staff_user("engineer", offices["division1"])


@pytest.fixture
def owner_documents():
    return [
        services.DocumentIn("identity_proof", "aadhaar", "234123412346"),
        services.DocumentIn("photograph"),
        services.DocumentIn("ownership_proof", "sale_deed", "SD-1234"),
    ]


@pytest.fixture
def apply(offices, loaded, cre, owner_documents):
    def make(**kw):
        args = dict(
            actor=cre,
            channel="care_centre",
            name="Pradeep Sahoo",
            mobile="9861012345",
            applicant_type="owner",
            premises_address="House 4, Motiganj, Balasore",
            latitude=BALASORE[0],
            longitude=BALASORE[1],
            area_class="municipal",
            section=offices["section1"],
            supply_type="lt_1ph",
            load="2",
            category="domestic",
            documents=owner_documents,
        )
        args.update(kw)
        return services.register_application(**args)

    return make
