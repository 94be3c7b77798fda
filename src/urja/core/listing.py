"""Lists on pages (issue 15 part 5): one way to paginate, filter and export a list as CSV or Excel.

    if listing.wants_export(request):                    # ?format=csv or ?format=xlsx
        return listing.export_response(request, "collections", header, rows_from(queryset))
    context = {**listing.pager(request, queryset), ...}  # page, query, exports (50 a page, ?page=N)

Templates include "core/_pager.html" (rows, page x of y, previous / next keep the filters, CSV and Excel
links). Cells that would start a formula (=, +, -, @) are written as text with a leading quote in both
formats (spreadsheet injection); an export stops at EXPORT_LIMIT rows (a bigger one belongs to a report job).

In the .xlsx numbers stay numbers, a Decimal keeps its own decimals (money: 2), dates and times are dates
(dd-mm-yyyy, times in India Standard Time). It is written by XlsxWriter in constant-memory mode: rows go to
a temporary file as they come, so a 100,000-row export does not sit in memory.

Filters a list page shares (`read_filters`, then `by_search`, `by_office`, `by_dates`; the form fields
in "core/_list_filters.html"): ?q= a number or a name, ?office= an office code within the user's scope,
?from= / ?to= a date range (days in India Standard Time, either end open, swapped when reversed).
"""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO
from urllib.parse import urlencode

import xlsxwriter
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from urja.core.errors import DomainError
from urja.core.templatetags.urja_format import when

PER_PAGE = 50
EXPORT_LIMIT = 100_000  # rows; a bigger export belongs to a report job
FORMATS = ("csv", "xlsx")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXCEL_EXACT_INT = 10**15  # Excel keeps 15 significant digits: a longer integer goes as text
# A filter day is held within these: no list has rows outside them, and 0001-01-01 or 9999-12-31 (a date
# picker's ends) would overflow when the day is turned into an IST moment or moved past its end.
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)


@dataclass(frozen=True)
class Filters:
    q: str = ""
    office: str = ""  # an office code; honoured only when the office is among the page's (scoped) offices
    since: date | None = None
    until: date | None = None


def _day(text: str | None) -> date | None:
    text = (text or "").strip()
    for parse in (date.fromisoformat, lambda t: datetime.strptime(t, "%d-%m-%Y").date()):
        try:
            return min(max(parse(text), EARLIEST_DAY), LATEST_DAY)
        except ValueError:
            continue
    return None


def read_filters(request) -> Filters:
    since, until = _day(request.GET.get("from")), _day(request.GET.get("to"))
    if since and until and until < since:
        since, until = until, since
    q = (request.GET.get("q") or "").strip()[:100]
    return Filters(q=q, office=(request.GET.get("office") or "").strip()[:40], since=since, until=until)


def by_search(queryset: QuerySet, filters: Filters, *lookups: str) -> QuerySet:
    """Rows where any of `lookups` (e.g. "number__iexact", "consumer__name__icontains") matches ?q=."""
    if not filters.q or not lookups:
        return queryset
    where = Q()
    for lookup in lookups:
        where |= Q(**{lookup: filters.q})
    return queryset.filter(where)


def by_office(queryset: QuerySet, filters: Filters, offices: QuerySet, office_path_field: str):
    """(rows under the chosen office, that office) — an office outside `offices` (the user's scope) is
    ignored like an unknown code, so the filter never widens what the page shows."""
    if not filters.office:
        return queryset, None
    office = offices.filter(code=filters.office).first()
    if office is None:
        return queryset, None
    return queryset.filter(**{f"{office_path_field}__startswith": office.path}), office


def by_dates(queryset: QuerySet, filters: Filters, field: str, *, moments: bool = True) -> QuerySet:
    """Rows whose `field` lies in [from, to] (whole days; `moments`: a DateTimeField, days in IST)."""
    if filters.since:
        start = _start_of(filters.since) if moments else filters.since
        queryset = queryset.filter(**{f"{field}__gte": start})
    if filters.until:
        if moments:
            queryset = queryset.filter(**{f"{field}__lt": _start_of(filters.until + timedelta(days=1))})
        else:
            queryset = queryset.filter(**{f"{field}__lte": filters.until})
    return queryset


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def page_of(request, queryset, per_page: int = PER_PAGE) -> Page:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def pager(request, queryset, per_page: int = PER_PAGE) -> dict:
    """What core/_pager.html needs: the page, the filters to keep on page links, the export links."""
    return {"page": page_of(request, queryset, per_page), "query": query_without(request, "page", "format"),
            "exports": export_urls(request)}  # fmt: skip


def export_format(request) -> str | None:
    fmt = request.GET.get("format")
    return fmt if fmt in FORMATS else None


def wants_export(request) -> bool:
    return export_format(request) is not None


def back_to_list(request, default: str):
    """After an action posted from a list page: back to the page it came from (its `next`, with its
    filters and page) when that is an address on this site, else to `default` (a URL name)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def act_then_back(request, action: Callable[[], object], *, done: str | Callable[[object], str], default: str):
    """An action posted from a list page: run `action` (a service call); its DomainError becomes the
    page's error message, else `done` (or `done(result)`) its success message; then `back_to_list`."""
    try:
        result = action()
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done(result) if callable(done) else done)
    return back_to_list(request, default)


def query_without(request, *drop: str) -> str:
    """The request's query string without `drop` keys (for page links and the export link)."""
    pairs = [(k, v) for k, values in request.GET.lists() if k not in drop for v in values]
    return urlencode(pairs)


def export_urls(request) -> dict[str, str]:
    """{"csv": "?<filters>&format=csv", "xlsx": ...}: the same rows as the page, every page of them."""
    rest = query_without(request, "page", "format")
    return {fmt: f"?{rest}&format={fmt}" if rest else f"?format={fmt}" for fmt in FORMATS}


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export_response(request, name: str, header: Sequence[str], rows: Iterable[Sequence]) -> HttpResponse:
    """The list as a download: .xlsx for ?format=xlsx, CSV otherwise; `rows` may be a generator."""
    if export_format(request) == "xlsx":
        return xlsx_response(name, header, rows)
    return _csv_stream(name, header, rows)


def csv_cell(value) -> str:
    """A CSV cell as export_response writes it: dates and times as on the pages (core's `when`: dd-mm-yyyy,
    times HH:MM in IST), yes / no, the rest as text through the injection guard (Decimals keep their places)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return when(value)
    return safe_cell(value)


class _Echo:
    def write(self, value):
        return value


def _csv_stream(name, header, rows) -> StreamingHttpResponse:
    """A streamed CSV download (UTF-8 with BOM, so spreadsheet programs read Hindi and Odia)."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow([safe_cell(h) for h in header])
        for n, row in enumerate(rows):
            if n >= EXPORT_LIMIT:
                break
            yield writer.writerow([csv_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def xlsx_response(name: str, header: Sequence[str], rows: Iterable[Sequence]) -> FileResponse:
    return FileResponse(
        write_xlsx(header, rows, sheet=name), as_attachment=True, filename=f"{name}.xlsx", content_type=XLSX_TYPE
    )


def write_xlsx(
    header: Sequence[str], rows: Iterable[Sequence], *, sheet: str = "Sheet1", limit: int | None = None
) -> IO[bytes]:
    """One sheet: a bold, frozen header row and at most `limit` rows; the file returned is read from 0."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 -- handed to the caller (FileResponse closes it)
    try:
        _fill(out, header, rows, sheet=sheet, limit=EXPORT_LIMIT if limit is None else limit)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _fill(out, header, rows, *, sheet: str, limit: int) -> None:
    book = xlsxwriter.Workbook(
        out,
        # constant_memory: each finished row goes to a temporary file (and strings are inline); the other
        # two keep text as text: no cell becomes a formula or a link because of what a user typed
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False},
    )
    formats = _Formats(book)
    ws = book.add_worksheet(_sheet_name(sheet))
    for c, title in enumerate(header):
        ws.set_column(c, c, min(max(len(str(title)) + 2, 10), 40))
    ws.freeze_panes(1, 0)
    for c, title in enumerate(header):
        ws.write_string(0, c, safe_cell(title), formats.bold)
    for n, row in enumerate(rows):
        if n >= limit:
            break
        for c, value in enumerate(row):
            _write(ws, n + 1, c, value, formats)
    book.close()


class _Formats:
    def __init__(self, book):
        self.book = book
        self.bold = book.add_format({"bold": True})
        self.date = book.add_format({"num_format": "dd-mm-yyyy"})
        self.datetime = book.add_format({"num_format": "dd-mm-yyyy hh:mm"})
        self._decimals: dict[int, object] = {}

    def decimals(self, places: int):
        if places not in self._decimals:
            pattern = "#,##0" + ("." + "0" * places if places else "")
            self._decimals[places] = self.book.add_format({"num_format": pattern})
        return self._decimals[places]


def _write(ws, row: int, col: int, value, formats: _Formats) -> None:
    if value is None or value == "":
        return
    if isinstance(value, bool):
        ws.write_boolean(row, col, value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            ws.write_string(row, col, str(value))
        else:
            exponent = value.as_tuple().exponent
            places = min(-exponent, 6) if isinstance(exponent, int) and exponent < 0 else 0
            ws.write_number(row, col, float(value), formats.decimals(places))
    elif isinstance(value, int):
        if abs(value) < EXCEL_EXACT_INT:
            ws.write_number(row, col, value)
        else:
            ws.write_string(row, col, str(value))
    elif isinstance(value, float):
        if math.isfinite(value):
            ws.write_number(row, col, value)
        else:
            ws.write_string(row, col, str(value))
    elif isinstance(value, datetime):
        local = timezone.localtime(value) if timezone.is_aware(value) else value
        ws.write_datetime(row, col, local.replace(tzinfo=None), formats.datetime)
    elif isinstance(value, date):
        ws.write_datetime(row, col, value, formats.date)
    else:
        ws.write_string(row, col, safe_cell(value))


def _sheet_name(name: str) -> str:
    """Excel's rule: at most 31 characters, none of []:*?/\\, not starting or ending with a quote."""
    clean = "".join("-" if ch in "[]:*?/\\" else ch for ch in str(name)).strip("' ")[:31].strip("' ")
    return clean or "Sheet1"
