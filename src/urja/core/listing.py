"""Lists on pages (issue 15 part 5): one way to paginate, filter and export a list as CSV.

    page = listing.page_of(request, queryset)            # 50 a page, ?page=N (bad N: the first/last)
    if listing.wants_csv(request):
        return listing.csv_response("collections", header, rows_from(queryset))
    context = {"page": page, "export_url": listing.export_url(request)}

Templates include "core/_pager.html" (page x of y, previous / next keep the filters, CSV link).
CSV cells that would start a formula (=, +, -, @) are prefixed with a quote (spreadsheet injection).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.http import StreamingHttpResponse

PER_PAGE = 50
CSV_LIMIT = 100_000  # rows; a bigger export belongs to a report job
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def page_of(request, queryset, per_page: int = PER_PAGE) -> Page:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def wants_csv(request) -> bool:
    return request.GET.get("format") == "csv"


def query_without(request, *drop: str) -> str:
    """The request's query string without `drop` keys (for page links and the export link)."""
    pairs = [(k, v) for k, values in request.GET.lists() if k not in drop for v in values]
    return urlencode(pairs)


def export_url(request) -> str:
    rest = query_without(request, "page", "format")
    return f"?{rest}&format=csv" if rest else "?format=csv"


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Echo:
    def write(self, value):
        return value


def csv_response(name: str, header: Sequence[str], rows: Iterable[Sequence]) -> StreamingHttpResponse:
    """A streamed CSV download (UTF-8 with BOM, so spreadsheet programs read Hindi and Odia)."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow([safe_cell(h) for h in header])
        for n, row in enumerate(rows):
            if n >= CSV_LIMIT:
                break
            yield writer.writerow([safe_cell(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response
