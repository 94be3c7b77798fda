"""docs/ui.md's "Pages by role" is the navigation table's, so the document says what each role sees."""

from pathlib import Path

from django.conf import settings

from urja.backoffice import navigation, pages_by_role


def test_the_committed_section_is_the_navigation_table():
    doc = (Path(settings.BASE_DIR) / "docs" / "ui.md").read_text(encoding="utf-8")
    assert pages_by_role.section() in doc, "docs/ui.md is stale: run `urja pages_by_role --write`"


def test_every_navigation_link_is_listed_for_each_role_it_names():
    text = pages_by_role.section()
    for row in navigation.table():
        if row.kind == "link" and navigation.safe_reverse(row.url_name):
            assert f"{row.label('en')} `{navigation.safe_reverse(row.url_name)}`" in text


def test_rewrite_replaces_only_its_section():
    before = f"# UI\n\nintro\n\n{pages_by_role.BEGIN}\nold\n{pages_by_role.END}\n\n## After\n"
    after = pages_by_role.rewrite(before)
    assert after.startswith("# UI\n\nintro\n\n") and after.endswith("\n\n## After\n")
    assert "old" not in after and pages_by_role.section() in after
