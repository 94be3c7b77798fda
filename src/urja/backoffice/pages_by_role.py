"""docs/ui.md's "Pages by role" section, written from the one navigation table (data/<app>/navigation.toml).

`urja pages_by_role --write` rewrites the section between its markers; a test fails when the committed
section and the table differ, so the document cannot drift from what each role is shown.
"""

from __future__ import annotations

from django.urls import reverse

from urja.core.models import Role

from . import navigation

BEGIN = "<!-- pages-by-role:begin (generated: urja pages_by_role --write) -->"
END = "<!-- pages-by-role:end -->"
KIND_WORDS = {"link": "navigation", "home_panel": "home panel", "account_panel": "360° panel"}


def _where(row: navigation.Row) -> str:
    if row.kind == "account_panel":
        return f"`{reverse(row.url_name, args=['__cn__']).replace('__cn__', '<consumer_number>')}`"
    url = navigation.safe_reverse(row.url_name)
    return f"`{url}`" if url else f"`{row.url_name}` (not installed)"


def section() -> str:
    """The markdown of the section: per staff role, its links and panels; consumers and admin in words."""
    lines = [BEGIN, ""]
    staff_roles = [r for r in Role if r not in (Role.CONSUMER, Role.ADMIN)]
    for role in staff_roles:
        rows = [row for row in navigation.table() if row.allows(role.value)]
        lines.append(f"**{role.label}** (`{role.value}`)")
        lines.append("")
        for kind in navigation.KINDS:
            of_kind = [row for row in rows if row.kind == kind]
            if of_kind:
                items = ", ".join(f"{row.label('en')} {_where(row)}" for row in of_kind)
                lines.append(f"- {KIND_WORDS[kind]}: {items}")
        lines.append("")
    lines += [
        "**Administrator** (`admin`, or any superuser): every row above.",
        "",
        "**Consumer** (`consumer`): no back office; lands on the portal `/portal/`.",
        "",
        END,
    ]
    return "\n".join(lines)


def rewrite(text: str) -> str:
    """`text` (docs/ui.md) with its section replaced (appended under a heading when missing)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _old, tail = rest.split(END, 1)
        return head + section() + tail
    return text.rstrip("\n") + "\n\n## Pages by role\n\n" + section() + "\n"
