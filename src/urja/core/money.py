"""Money: Decimal rupees quantized to paise, Indian digit grouping, amount in words.

Money is never a float. Every stored or displayed amount passes through `paise()`.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

PAISA = Decimal("0.01")
KWH = Decimal("0.001")
MAX_AMOUNT = Decimal("1e12")  # a lakh crore: above any single real payment or bill


class MoneyError(ValueError):
    """An amount that is not a valid rupee value."""


def to_decimal(value: object) -> Decimal:
    if isinstance(value, float):
        # Floats carry binary error; go through their shortest repr, never the binary value.
        value = repr(value)
    try:
        result = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result


def paise(value: object) -> Decimal:
    """Round to paise, half away from zero (the convention on Indian utility bills)."""
    return to_decimal(value).quantize(PAISA, rounding=ROUND_HALF_UP)


def kwh(value: object) -> Decimal:
    return to_decimal(value).quantize(KWH, rounding=ROUND_HALF_UP)


def parse_amount(value: object, *, allow_zero: bool = False) -> Decimal:
    """Validate an amount received from outside: ASCII digits (no "१००", "１００", "1e3"), positive, at most
    two decimals, below MAX_AMOUNT. The rule is core.boundary's, the one every input path uses."""
    from .boundary import InvalidInput
    from .boundary import parse_amount as strict_amount

    try:
        return strict_amount(value, allow_zero=allow_zero)
    except InvalidInput as exc:
        raise MoneyError(exc.message) from None


def group_indian(integer_digits: str) -> str:
    """'12345678' -> '1,23,45,678' (last three, then pairs)."""
    if len(integer_digits) <= 3:
        return integer_digits
    head, tail = integer_digits[:-3], integer_digits[-3:]
    pairs = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    if head:
        pairs.insert(0, head)
    return ",".join([*pairs, tail])


def format_inr(value: object, *, symbol: bool = False) -> str:
    """Format rupees with Indian grouping: 12345678.5 -> '1,23,45,678.50'."""
    amount = paise(value)
    sign = "-" if amount < 0 else ""
    whole, frac = f"{abs(amount):.2f}".split(".")
    text = f"{sign}{group_indian(whole)}.{frac}"
    return f"₹{text}" if symbol else text


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _below_hundred(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        parts.append(f"{_ONES[hundreds]} hundred")
    if rest:
        parts.append(_below_hundred(rest))
    return " ".join(parts)


def integer_in_words(n: int) -> str:
    """Indian numbering system: crore, lakh, thousand."""
    if n == 0:
        return "zero"
    parts = []
    crore, n = divmod(n, 10_000_000)
    if crore:
        parts.append(f"{integer_in_words(crore)} crore")
    lakh, n = divmod(n, 100_000)
    if lakh:
        parts.append(f"{_below_hundred(lakh)} lakh")
    thousand, n = divmod(n, 1000)
    if thousand:
        parts.append(f"{_below_hundred(thousand)} thousand")
    if n:
        parts.append(_below_thousand(n))
    return " ".join(parts)


# Hindi and Odia number words (Indian grouping: hazaar, lakh, crore) from AI4Bharat's
# indic-numtowords; the currency phrase around them is ours.
_CURRENCY_PHRASE = {
    "hi": ("{rupees} रुपये", " और {paise} पैसे", " मात्र", "ऋण "),
    "or": ("{rupees} ଟଙ୍କା", " ଓ {paise} ପଇସା", " ମାତ୍ର", "ଋଣ "),
}


def amount_in_words(value: object, language: str = "en") -> str:
    """'Rupees One Lakh Twenty-Three Thousand Four Hundred Fifty-Six and Seventy Paise Only';
    in Hindi 'एक लाख तेईस हज़ार चार सौ छप्पन रुपये और सत्तर पैसे मात्र', likewise in Odia."""
    amount = paise(value)
    if language in _CURRENCY_PHRASE:
        from indic_numtowords import num2words

        rupees_text, paise_text, only, minus = _CURRENCY_PHRASE[language]
        sign, amount = (minus, -amount) if amount < 0 else ("", amount)
        rupees = int(amount)
        paisa = int((amount - rupees) * 100)
        words = rupees_text.format(rupees=num2words(rupees, lang=language))
        if paisa:
            words += paise_text.format(paise=num2words(paisa, lang=language))
        return sign + words + only
    if amount < 0:
        return "Minus " + amount_in_words(-amount)
    rupees = int(amount)
    paisa = int((amount - rupees) * 100)
    words = f"Rupees {integer_in_words(rupees)}"
    if paisa:
        words += f" and {_below_hundred(paisa)} paise"
    return (words + " only").title().replace("-", "-")
