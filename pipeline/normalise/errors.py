"""Typed errors raised by the normalisers' `validate` functions.

Every message is fixed text: an error never carries the value that failed
(rule 7 of docs/register_rules.md), so it is safe to log. The caller knows the column and
the record; the error says only what kind of problem it was.

>>> try:
...     raise InvalidChecksum()
... except NormaliseError as error:
...     str(error)
'the check character or digits do not match'
"""

from __future__ import annotations


class NormaliseError(ValueError):
    """Base class: the value cannot be normalised to a valid canonical value."""

    message = "the value is not valid"

    def __init__(self) -> None:
        super().__init__(self.message)


class EmptyValue(NormaliseError):
    """Nothing but whitespace was given."""

    message = "the value is empty"


class InvalidFormat(NormaliseError):
    """The value does not have the shape of this kind of value."""

    message = "the value does not have the expected format"


class InvalidLength(NormaliseError):
    """The value has the wrong number of characters or digits."""

    message = "the value has the wrong length"


class InvalidComponent(NormaliseError):
    """A part of the value is out of its allowed range."""

    message = "a part of the value is out of range"


class InvalidDate(InvalidComponent):
    """A date part that is not a calendar date."""

    message = "the date part is not a calendar date"


class InvalidChecksum(NormaliseError):
    """The check character or check digits do not match the rest."""

    message = "the check character or digits do not match"


class TemporaryCode(NormaliseError):
    """A temporary personal identity code (individual number 900-999)."""

    message = "a temporary identity code is not a person's identity"


class FutureBirthDate(NormaliseError):
    """An identity code whose birth date lies in the future."""

    message = "the birth date of the identity code lies in the future"


class ImplausibleBirthDate(NormaliseError):
    """An identity code born in the 1800s (the `+` sign): no living person's."""

    message = "the birth date of the identity code lies in the 1800s: no living person's"


class UnknownCountry(NormaliseError):
    """An IBAN for a country that has no IBAN format."""

    message = "the country code is not an IBAN country"


class UnknownBankGroup(NormaliseError):
    """A Finnish domestic account number whose first digit is no bank group."""

    message = "the account number starts with no Finnish bank group"


class UnknownProduct(NormaliseError):
    """Product text that maps to none of the five product codes."""

    message = "the product is not one of the known products"
