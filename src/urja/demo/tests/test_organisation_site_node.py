"""The demo organisation's mini-grid site has its node on the network (feeder and DT) from the start, so
the site's accounts can hang on it when opened; building again adds nothing."""

import pytest

from urja.core.models import AuditEvent
from urja.demo.organisation import build_organisation
from urja.network.models import DistributionTransformer, MiniGridSite


@pytest.mark.django_db
def test_the_demo_site_is_built_with_its_dt_and_building_again_changes_nothing():
    org = build_organisation()
    site = org.minigrid_site
    assert site.transformer_id is not None
    dt = site.transformer
    assert dt.feeder.office_id == site.office_id == org.minigrid_section.pk
    assert AuditEvent.objects.filter(action="network.minigrid_node", object_id=str(site.pk)).count() == 1
    dts = DistributionTransformer.objects.count()
    again = build_organisation()
    assert again.minigrid_site.pk == site.pk and again.minigrid_site.transformer_id == dt.pk
    assert DistributionTransformer.objects.count() == dts and MiniGridSite.objects.count() == 1


@pytest.mark.django_db
def test_a_site_built_before_sites_had_nodes_gets_its_node():
    org = build_organisation()
    site = org.minigrid_site
    MiniGridSite.objects.filter(pk=site.pk).update(transformer=None)
    again = build_organisation()
    assert again.minigrid_site.transformer_id == site.transformer_id  # the same node, placed again
