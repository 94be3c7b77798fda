"""The group payment page (/payments/groups/<id>/, issue 15.6): the group's consolidated statement
(connections in scope, balance and open items by category, totals, the recent group payments with
their parts and receipts) and the form that takes one payment spread over the connections."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from urja.core.errors import DomainError, NotFound
from urja.core.money import format_inr
from urja.core.permissions import role_of

from . import group

FIELDS = ("amount", "channel", "method", "reference", "instrument_number", "instrument_bank", "key")


@login_required
def group_payment(request, group_id: int):
    if role_of(request.user) not in group.GROUP_ROLES:
        raise PermissionDenied
    form = {"channel": "file", "method": "bank", "key": uuid.uuid4().hex}
    error = ""
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in FIELDS}
        try:
            gp = group.take_group_payment(
                actor=request.user,
                group_id=group_id,
                amount=form["amount"],
                channel=form["channel"],
                method=form["method"],
                idempotency_key=form["key"],
                reference=form["reference"],
                instrument_number=form["instrument_number"],
                instrument_bank=form["instrument_bank"],
            )
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except DomainError as exc:  # Forbidden too: shown on the form, nothing posted
            error = exc.message
        else:
            messages.success(
                request,
                _("Group payment of %(amount)s posted on %(n)s connections.")
                % {"amount": format_inr(gp.amount, symbol=True), "n": len(gp.spread)},
            )
            return redirect("payments:group_payment", group_id=group_id)
    try:
        st = group.statement(actor=request.user, group_id=group_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    recent = []
    for gp in st["payments"]:
        receipts = {p.consumer_number: p.receipt_number for p in group.parts(gp)}
        rows = [
            {
                "consumer_number": p["consumer_number"],
                "amount": p["amount"],
                "receipt": receipts.get(p["consumer_number"]),
            }
            for p in gp.spread
        ]
        recent.append((gp, rows))
    return render(
        request,
        "payments/group_payment.html",
        {"st": st, "recent": recent, "form": form, "error": error, "channels": group.GROUP_CHANNELS},
        status=400 if error else 200,
    )
