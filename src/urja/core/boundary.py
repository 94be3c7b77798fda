"""The input boundary: one rule for every number, amount, date, page and text received from outside.

The same functions serve the API (pydantic types below, used in every app's schemas, and the
parser/middleware that look at every request), the back-office forms (services call the parse_*
functions on the raw POST strings) and file imports (per row). Bounds are data
(data/core/boundary.toml).

- Numbers are ASCII digits: "१००" (Devanagari), "１００" (fullwidth), "١٠٠" (Arabic-Indic) and
  exponent forms ("1e3") are refused with a message saying so, never silently read as 100 or 1000.
- Dates: not in the future beyond a small clock-skew allowance, not before the system's earliest year
  (or before the account existed, where the caller knows it).
- Pages: limit 0…max (larger capped), offset 0…max_offset; a negative one is a 422, never a 500.
- Text: no NUL or other control characters (newline and tab allowed in free text), within the
  column's max_length (derived from the model field) and a global cap for any string.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any

from django.utils import timezone
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from . import regdata
from .errors import DomainError


class InvalidInput(DomainError):
    """A value from outside that breaks the boundary rules (422: the request itself is malformed)."""

    status = 422
    code = "invalid_input"


@dataclass(frozen=True)
class Bounds:
    max_amount: Decimal
    max_quantity: Decimal
    max_integer: int
    clock_skew: timedelta
    earliest_year: int
    max_window_days: int
    default_limit: int
    max_limit: int
    max_offset: int
    max_free_text: int
    max_line: int


@lru_cache(maxsize=1)
def bounds() -> Bounds:
    data = regdata.load("core/boundary.toml")
    n, d, p, t = data["numbers"], data["dates"], data["pagination"], data["text"]
    return Bounds(
        max_amount=Decimal(n["max_amount"]),
        max_quantity=Decimal(n["max_quantity"]),
        max_integer=int(n["max_integer"]),
        clock_skew=timedelta(minutes=d["clock_skew_minutes"]),
        earliest_year=int(d["earliest_year"]),
        max_window_days=int(d["max_window_days"]),
        default_limit=int(p["default_limit"]),
        max_limit=int(p["max_limit"]),
        max_offset=int(p["max_offset"]),
        max_free_text=int(t["max_free_text"]),
        max_line=int(t["max_line"]),
    )


# --- numbers -------------------------------------------------------------------------------------

# re.ASCII: without it \d also matches "१", "１" and "١" (and Decimal() would read them as digits).
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{2,3})+(?:\.\d*)?", re.ASCII)  # 1,23,456.50 and 123,456.50


_PLACES = {0: "zero", 1: "one", 2: "two", 3: "three"}


def _number_problem(text: str) -> str:
    if any(ch.isdigit() and not ch.isascii() for ch in text):
        return "use the digits 0-9 (digits of other scripts are not accepted)"
    if "e" in text.lower() and any(ch.isdigit() for ch in text):
        return "write the number in plain digits (no exponent such as 1e3)"
    return "not a number"


def parse_decimal(
    value: object,
    *,
    name: str = "value",
    code: str = "invalid_number",
    minimum: Decimal | int | None = None,
    maximum: Decimal | int | None = None,
    places: int | None = None,
) -> Decimal:
    """A plain decimal number from outside: ASCII digits, optional sign, optional fraction, Indian or
    international comma grouping. Raises InvalidInput(code) naming `name` and the reason."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{name}: a number is required", code=code, details={name: value})
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal | float):
        if isinstance(value, float) and value != value:  # NaN
            raise InvalidInput(f"{name}: not a finite number", code=code, details={name: str(value)})
        # a float goes through its shortest repr (never its binary value); 1e30 arrives as "1e+30"
        return parse_decimal(
            repr(value) if isinstance(value, float) else format(value, "f") if value.is_finite() else "nan",
            name=name, code=code, minimum=minimum, maximum=maximum, places=places,
        )  # fmt: skip
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise InvalidInput(f"{name}: number too long", code=code, details={name: text[:64]})
        if _GROUPED.fullmatch(text):
            text = text.replace(",", "")
        if not _PLAIN_NUMBER.fullmatch(text):
            raise InvalidInput(f"{name}: {_number_problem(text)}, got {value!r}", code=code, details={name: value})
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
            raise InvalidInput(f"{name}: not a number, got {value!r}", code=code, details={name: value}) from None
    else:
        raise InvalidInput(f"{name}: a number is required", code=code, details={name: str(value)[:64]})
    if places is not None and number != number.quantize(Decimal(1).scaleb(-places)):
        count = _PLACES.get(places, str(places))
        raise InvalidInput(
            f"{name} {value} has more than {count} decimal places", code=code, details={name: str(value)}
        )
    if minimum is not None and number < minimum:
        raise InvalidInput(f"{name}: must be at least {minimum}, got {value}", code=code, details={name: str(value)})
    if maximum is not None and number > maximum:
        raise InvalidInput(f"{name}: must be at most {maximum}, got {value}", code=code, details={name: str(value)})
    return number


def parse_amount(value: object, *, name: str = "amount", allow_zero: bool = False) -> Decimal:
    """Rupees from outside: positive (or zero when allowed), at most two decimals, below max_amount."""
    amount = parse_decimal(value, name=name, code="invalid_amount", maximum=bounds().max_amount, places=2)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidInput(
            f"{name}: must be greater than zero, got {value}", code="invalid_amount", details={name: str(value)}
        )
    return amount.quantize(Decimal("0.01"))


def parse_quantity(value: object, *, name: str = "value", places: int = 3, allow_negative: bool = False) -> Decimal:
    """kWh, kW, kVA, register values: non-negative (unless allowed), bounded, at most `places` decimals."""
    b = bounds()
    return parse_decimal(
        value,
        name=name,
        minimum=-b.max_quantity if allow_negative else 0,
        maximum=b.max_quantity,
        places=places,
    )


def parse_int(value: object, *, name: str = "value", minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number from outside (a page, a count, a year): ASCII digits within bounds."""
    top = bounds().max_integer if maximum is None else maximum
    number = parse_decimal(value, name=name, minimum=minimum, maximum=top, places=0)
    return int(number)


# --- dates ---------------------------------------------------------------------------------------


def check_moment(
    moment: datetime,
    *,
    name: str = "received_at",
    not_before: datetime | date | None = None,
    now: datetime | None = None,
) -> datetime:
    """A past instant: not later than now + the clock-skew allowance, not before the earliest year nor
    before `not_before` (the account's creation or connection). Naive datetimes are read as local time."""
    b = bounds()
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    now = now or timezone.now()
    if moment > now + b.clock_skew:
        raise InvalidInput(
            f"{name} {moment.isoformat()} is in the future", code="date_in_future", details={name: moment.isoformat()}
        )
    if moment.year < b.earliest_year:
        raise InvalidInput(
            f"{name} {moment.isoformat()} is before {b.earliest_year}",
            code="date_too_early",
            details={name: moment.isoformat()},
        )
    if not_before is not None:
        floor = not_before
        if isinstance(floor, date) and not isinstance(floor, datetime):
            floor = timezone.make_aware(datetime.combine(floor, datetime.min.time()), timezone.get_current_timezone())
        if moment < floor:
            raise InvalidInput(
                f"{name} {moment.isoformat()} is before the account existed ({floor.date().isoformat()})",
                code="date_before_account",
                details={name: moment.isoformat(), "earliest": floor.isoformat()},
            )
    return moment


def check_day(day: date, *, name: str = "date") -> date:
    """A calendar date within the system's years (a period, a bill date): not before earliest_year nor
    more than a year ahead (schedules and due dates look a little ahead)."""
    b = bounds()
    today = timezone.localdate()
    if not (date(b.earliest_year, 1, 1) <= day <= today + timedelta(days=366)):
        raise InvalidInput(
            f"{name} {day.isoformat()} is out of range", code="date_out_of_range", details={name: str(day)}
        )
    return day


def window_days(value: object, *, name: str = "days") -> int:
    """A look-back window in days: 1…max_window_days."""
    return parse_int(value, name=name, minimum=1, maximum=bounds().max_window_days)


# --- text ----------------------------------------------------------------------------------------

# C0 controls but tab/newline/carriage return, DEL, C1 controls, and lone surrogates (JSON "\ud800"
# decodes to one; PostgreSQL cannot store it).
_CONTROL_FREE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control(text: str, *, multiline: bool = False) -> bool:
    """A quick yes/no for hot loops (file rows): a control character (newline/tab allowed when multiline)."""
    return (_CONTROL_FREE_TEXT if multiline else _CONTROL_LINE).search(text) is not None


def text_problem(value: str, *, multiline: bool = True, max_length: int | None = None) -> str | None:
    """Why a string is refused, or None. One rule for API bodies, forms, query strings and file cells."""
    pattern = _CONTROL_FREE_TEXT if multiline else _CONTROL_LINE
    found = pattern.search(value)
    if found:
        return f"control character U+{ord(found.group()):04X} is not allowed"
    limit = max_length if max_length is not None else bounds().max_free_text
    if len(value) > limit:
        return f"at most {limit} characters, got {len(value)}"
    return None


def clean_text(value: object, *, name: str = "text", multiline: bool = False, max_length: int | None = None) -> str:
    """A text value from outside, stripped; refused (invalid_text) with control characters or too long."""
    text = "" if value is None else str(value).strip()
    problem = text_problem(text, multiline=multiline, max_length=max_length)
    if problem:
        raise InvalidInput(f"{name}: {problem}", code="invalid_text", details={"field": name})
    return text


def column_length(model, field: str) -> int | None:
    return model._meta.get_field(field).max_length


# --- pydantic types for API schemas ---------------------------------------------------------------


def _pydantic(parse, **kwargs):
    """A BeforeValidator that runs a boundary parse and reports its code as the pydantic error type
    (the API's 422 then carries that code, e.g. invalid_amount)."""

    def validate(value: Any):
        try:
            return parse(value, **kwargs)
        except InvalidInput as exc:
            raise PydanticCustomError(exc.code, "{reason}", {"reason": exc.message}) from None

    return BeforeValidator(validate)


def _number_schema(maximum: Decimal, places: int, minimum: int | Decimal = 0) -> WithJsonSchema:
    fraction = rf"(\.\d{{1,{places}}})?" if places else ""
    sign = "-?" if minimum < 0 else ""
    digits = len(str(int(maximum)))
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": float(minimum), "maximum": float(maximum)},
                {"type": "string", "pattern": rf"^{sign}[0-9]{{1,{digits}}}{fraction}$"},
            ]
        }
    )


def _amount_type(allow_zero: bool):
    top = Decimal("1000000000000")  # schema only; the check reads bounds() at request time
    return Annotated[Decimal, _pydantic(parse_amount, allow_zero=allow_zero), _number_schema(top, 2, minimum=0)]


# Rupees: "1500", "1500.50", 1500.5, "1,500.50"; not "१५००", "1.5e3", 0, -1, 1e30.
Amount = _amount_type(False)
AmountOrZero = _amount_type(True)


def Quantity(*, places: int = 3, allow_negative: bool = False):
    """kWh/kW/kVA/register values, or a factor: ASCII digits, at most `places` decimals, bounded."""
    top = Decimal("1000000000")
    return Annotated[
        Decimal,
        _pydantic(parse_quantity, places=places, allow_negative=allow_negative),
        _number_schema(top, places, minimum=-top if allow_negative else 0),
    ]


def Text(max_length: int | None = None, *, multiline: bool = False):
    """A string without control characters (newline/tab allowed when multiline), at most max_length
    (or the global free-text cap), stripped."""
    limit = max_length or bounds().max_free_text

    def validate(value: Any):
        if not isinstance(value, str):
            return value  # pydantic's own str check reports it
        problem = text_problem(value, multiline=multiline, max_length=limit)
        if problem:
            raise PydanticCustomError("invalid_text", "{reason}", {"reason": problem})
        return value.strip()

    return Annotated[str, BeforeValidator(validate), Field(max_length=limit)]


def ColumnText(model, field: str, *, multiline: bool = False):
    """Text held to a model column's max_length (a TextField: the global free-text cap)."""
    return Text(column_length(model, field), multiline=multiline)


def _past_moment(value: Any):
    if not isinstance(value, datetime):
        return value
    try:
        return check_moment(value)
    except InvalidInput as exc:
        raise PydanticCustomError(exc.code, "{reason}", {"reason": exc.message}) from None


def _day(value: Any):
    if not isinstance(value, date):
        return value
    try:
        return check_day(value)
    except InvalidInput as exc:
        raise PydanticCustomError(exc.code, "{reason}", {"reason": exc.message}) from None


# When something happened (received_at, a reading's time): not in the future beyond the clock skew,
# not before earliest_year. The account-specific floor is checked where the account is known.
PastMoment = Annotated[datetime, AfterValidator(_past_moment)]
# A calendar day (period, bill date, report day) within the system's years.
Day = Annotated[date, AfterValidator(_day)]


def Limit(default: int | None = None):
    """A page-size query parameter: 1…2^31-1 accepted, used capped to max_limit (see cap_limit)."""
    from ninja import Query

    b = bounds()
    return Query(b.default_limit if default is None else default, ge=0, le=b.max_integer)


def Offset():
    from ninja import Query

    return Query(0, ge=0, le=bounds().max_offset)


def cap_limit(limit: int) -> int:
    return max(0, min(limit, bounds().max_limit))


def Days(default: int):
    """A look-back window query parameter: 1…max_window_days."""
    from ninja import Query

    return Query(default, ge=1, le=bounds().max_window_days)


# --- pagination for @paginate (settings.NINJA_PAGINATION_CLASS) ----------------------------------


def _pagination_class():
    from ninja import Schema
    from ninja.pagination import LimitOffsetPagination

    b = bounds()

    class BoundedLimitOffsetPagination(LimitOffsetPagination):
        """Ninja's limit/offset with bounds: a negative or absurd offset is a 422 (ninja's own has no
        upper bound: offset 2^63 reached the database as an overflow, a 500); limit capped."""

        class Input(Schema):
            limit: int = Field(b.default_limit, ge=1, le=b.max_integer)
            offset: int = Field(0, ge=0, le=b.max_offset)

        def __init__(self, **kwargs):
            super().__init__(max_limit=b.max_limit, **kwargs)

    return BoundedLimitOffsetPagination


def __getattr__(name: str):
    # Imported by ninja through settings.NINJA_PAGINATION_CLASS; built lazily so importing this module
    # does not need ninja's settings or the data files.
    if name == "BoundedLimitOffsetPagination":
        return _pagination_class()
    raise AttributeError(name)


# --- every request: path, query, forms and JSON bodies --------------------------------------------


def request_problem(request) -> str | None:
    """Control characters in the path or a query parameter, or in a form field (newline/tab allowed
    there); over-long values. Checked once for every request by core.errorpages.BoundaryMiddleware."""
    b = bounds()
    if _CONTROL_LINE.search(request.path):
        return "the path contains a control character"
    for key, values in request.GET.lists():
        for item in [key, *values]:
            problem = text_problem(item, multiline=False, max_length=b.max_free_text)
            if problem:
                return f"query parameter {key[:40]!r}: {problem}"
    if request.method == "POST" and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        for key, values in request.POST.lists():
            for item in [key, *values]:
                problem = text_problem(item, multiline=True)
                if problem:
                    return f"form field {key[:40]!r}: {problem}"
    return None


def json_problem(data: Any, path: str = "") -> str | None:
    """The first string in a decoded JSON body (keys included) that breaks the text rule."""
    if isinstance(data, str):
        problem = text_problem(data, multiline=True)
        return f"{path or 'body'}: {problem}" if problem else None
    if isinstance(data, dict):
        for key, item in data.items():
            where = f"{path}.{key}" if path else str(key)
            problem = json_problem(key, where) if isinstance(key, str) else None
            problem = problem or json_problem(item, where)
            if problem:
                return problem
    elif isinstance(data, list):
        for i, item in enumerate(data):
            problem = json_problem(item, f"{path}[{i}]")
            if problem:
                return problem
    return None


def _parser_class():
    from ninja.parser import Parser

    class BoundaryParser(Parser):
        """Ninja's JSON parser, then the text rule over every string in the body."""

        def parse_body(self, request):
            data = super().parse_body(request)
            problem = json_problem(data)
            if problem:
                raise InvalidInput(problem, code="invalid_text")
            return data

    return BoundaryParser


def parser():
    return _parser_class()()


def account_floor(account) -> datetime | date | None:
    """The earliest moment anything can have happened on an account: its connection date when known
    (accounts migrated in keep their real history), else when it was opened here."""
    created, connected = getattr(account, "created_at", None), getattr(account, "connected_on", None)
    if connected is not None and created is not None:
        connected_at = timezone.make_aware(
            datetime.combine(connected, datetime.min.time()), timezone.get_current_timezone()
        )
        return min(created, connected_at)
    return connected or created
