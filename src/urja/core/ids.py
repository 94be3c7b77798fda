"""Check digits and number templates (pure). The series counter lives in models.NumberSeries.

Templates are strings with fields, e.g. ``"{office:3}{seq:7}{check}"`` for consumer numbers or
``"SR{yy}{seq:8}"`` for request numbers. Seed 001 builds mini-grid customer IDs from the site,
the package and a running number; that is ``"{site}{package}{seq:4}{check}"`` here.
"""

import re
import string
from collections.abc import Mapping
from datetime import date

import numpy as np

# Verhoeff tables (dihedral group D5): detects all single-digit errors and adjacent swaps.
_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def verhoeff_check_digit(digits: str) -> str:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[(i + 1) % 8][int(ch)]]
    return str(_INV[c])


def verhoeff_valid(digits: str) -> bool:
    if not digits.isdigit():
        return False
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


_ALNUM = string.digits + string.ascii_uppercase


def check_character(body: str) -> str:
    """Check digit for any body: Verhoeff over the body's characters mapped to digits.

    Letters map to their base-36 value (A=10 …), written as two digits, so alphanumeric
    prefixes (office codes, 'SR') are covered too.
    """
    mapped = "".join(ch if ch.isdigit() else f"{_ALNUM.index(ch):02d}" for ch in body.upper() if ch in _ALNUM)
    return verhoeff_check_digit(mapped)


def has_valid_check(number: str) -> bool:
    number = number.strip().upper()
    if len(number) < 2 or not all(ch in _ALNUM for ch in number):
        return False
    return check_character(number[:-1]) == number[-1]


_FIELD = re.compile(r"\{(\w+)(?::(\d+))?\}")


class TemplateError(ValueError):
    pass


def render_number(
    template: str, *, seq: int, fields: Mapping[str, str] | None = None, today: date | None = None
) -> str:
    """Render a number template. ``{check}`` (last) is computed over everything before it."""
    fields = dict(fields or {})
    today = today or date.today()
    fields.setdefault("yy", f"{today.year % 100:02d}")
    fields.setdefault("yyyy", str(today.year))
    fields.setdefault("mm", f"{today.month:02d}")
    if "{check}" in template and not template.endswith("{check}"):
        raise TemplateError("{check} must be the last field of a number template")

    def sub(match: re.Match[str]) -> str:
        name, width = match.group(1), match.group(2)
        if name == "check":
            return ""
        if name == "seq":
            text = str(seq)
            if width and len(text) > int(width):
                raise TemplateError(f"sequence {seq} overflows {width} digits in {template!r}")
            return text.zfill(int(width)) if width else text
        if name not in fields:
            raise TemplateError(f"template {template!r} needs a value for {{{name}}}")
        text = str(fields[name]).upper()
        return text.zfill(int(width))[-int(width) :] if width else text

    body = _FIELD.sub(sub, template)
    return body + check_character(body) if template.endswith("{check}") else body


def render_numbers(
    template: str, *, first: int, count: int, fields: Mapping[str, str] | None = None, today: date | None = None
) -> list[str]:
    """`count` consecutive numbers from `first`; the same as render_number for each, but the fields
    around {seq} are rendered once and the check characters are computed over numpy arrays of the
    sequence numbers (bill runs and settlement files allocate hundreds of thousands at a time)."""
    match = re.search(r"\{seq(?::(\d+))?\}", template)
    if match is None or count < 1:
        return [render_number(template, seq=first + i, fields=fields, today=today) for i in range(count)]
    with_check = template.endswith("{check}")
    body_template = template.removesuffix("{check}") if with_check else template
    if "{check}" in body_template:
        raise TemplateError("{check} must be the last field of a number template")
    render_number(body_template, seq=first + count - 1, fields=fields, today=today)  # overflow / missing fields
    head = render_number(body_template[: match.start()], seq=0, fields=fields, today=today)
    tail = render_number(body_template[match.end() :], seq=0, fields=fields, today=today)
    width = int(match.group(1) or 0)
    bodies = [f"{head}{seq:0{width}d}{tail}" for seq in range(first, first + count)]
    if not with_check:
        return bodies
    checks = _check_digits(_mapped(head), _mapped(tail), width, np.arange(first, first + count, dtype=np.int64))
    return [body + check for body, check in zip(bodies, checks, strict=True)]


# numpy forms of the Verhoeff tables for the vectorised check digits of render_numbers
_D_NP = np.array(_D, dtype=np.intp)
_P_NP = np.array(_P, dtype=np.intp)
_INV_TEXT = np.array([str(v) for v in _INV])


def _mapped(text: str) -> str:
    """A body part as check_character sees it: letters as two base-36 digits, other characters dropped."""
    return "".join(ch if ch.isdigit() else f"{_ALNUM.index(ch):02d}" for ch in text.upper() if ch in _ALNUM)


def _check_digits(head: str, tail: str, width: int, seqs: np.ndarray) -> list[str]:
    """verhoeff_check_digit(head + seq zero-padded to width + tail) for each seq (mapped head and tail).

    Verhoeff runs from the last digit: the tail gives one state for all, each digit position of the
    sequence numbers is one table lookup over the array, then the head's digits."""
    out = np.empty(len(seqs), dtype=_INV_TEXT.dtype)
    digits = np.array([len(str(int(s))) for s in (seqs.min(), seqs.max())])
    # without a width the numbers' length varies: one pass per length
    for length in range(int(digits[0]), int(digits[1]) + 1):
        mask = (seqs >= (10 ** (length - 1) if length > 1 else 0)) & (seqs < 10**length)
        if not mask.any():
            continue
        part = seqs[mask]
        c = 0
        for i, ch in enumerate(reversed(tail)):
            c = _D[c][_P[(i + 1) % 8][int(ch)]]
        state = np.full(len(part), c, dtype=np.intp)
        pos = len(tail)
        for k in range(max(width, length)):
            digit = (part // 10**k) % 10
            state = _D_NP[state, _P_NP[(pos + 1) % 8][digit]]
            pos += 1
        for ch in reversed(head):
            state = _D_NP[state, _P[(pos + 1) % 8][int(ch)]]
            pos += 1
        out[mask] = _INV_TEXT[state]
    return out.tolist()
