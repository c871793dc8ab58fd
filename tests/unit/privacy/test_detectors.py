"""Each detector with values it must find and look-alikes it must leave alone."""

from __future__ import annotations

import pytest

from finmaas.privacy import (
    PrivacyPolicy,
    find_cards,
    find_emails,
    find_ibans,
    find_phones,
    iban_valid,
    luhn_valid,
)


def _with_check_digit(body: str) -> str:
    """``body`` and the digit that makes it Luhn-valid."""
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


def _found(finder, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [text[f.start : f.end] for f in finder(text)]


CARDS = [
    "4111111111111111",  # Visa
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4222222222222",  # Visa, 13 digits
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express
    "3782 822463 10005",
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "30569309025904",  # Diners Club
    "6759649826438453",  # Maestro
]


@pytest.mark.parametrize("card", CARDS)
def test_card_found_in_a_sentence(card: str) -> None:
    text = f"please charge card {card}, thanks."
    assert _found(find_cards, text) == [card]


NOT_CARDS = [
    "4111111111111112",  # fails Luhn
    "4111 1111 1111 1112",
    _with_check_digit("123456789012345"),  # Luhn-valid, no network starts with 1
    _with_check_digit("901234567890123"),  # nor with 9
    "41111111111111",  # a Visa range at a length Visa does not issue (14)
    "4111 1111-1111 1111",  # two kinds of separator
    "41 1111 1111 1111 11",  # not the printed grouping
    "balance 4,111,111,111,111,111.00",
    "balance 4111111111111111.50",  # a decimal part: an amount
    "EUR 4111111111111111",  # next to a currency
    "$4111111111111111",
    "4111111111111111 USD",
    "ref AB4111111111111111",  # glued to a word
    "+4111111111111111",
    "12345678901234567890123",  # a long run
    "ISIN US0378331005",
    "amount 1,234,567.89",
    "transaction reference 4111111111111111",  # after a reference label
    "Order no. 5555555555554444",
]


@pytest.mark.parametrize("text", NOT_CARDS)
def test_card_look_alike_not_found(text: str) -> None:
    assert _found(find_cards, text) == []


def test_card_followed_by_more_digits_is_found_without_them() -> None:
    assert _found(find_cards, "4111 1111 1111 1111 12") == ["4111 1111 1111 1111"]


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


IBANS = [
    "GB82WEST12345698765432",
    "GB82 WEST 1234 5698 7654 32",
    "gb82 west 1234 5698 7654 32",
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "BE68539007547034",
    "NO9386011117947",  # the shortest, 15
    "CH9300762011623852957",
]


@pytest.mark.parametrize("iban", IBANS)
def test_iban_found_in_a_sentence(iban: str) -> None:
    text = f"Pay into {iban}. Thanks"
    assert _found(find_ibans, text) == [iban]


NOT_IBANS = [
    "GB82WEST12345698765431",  # wrong check digits
    "DE89370400440532013001",
    "DE88370400440532013000",
    "DE8937040044053201300",  # one character short of Germany's 22
    "DE893704004405320130001",  # one too many
    "XX89370400440532013000",  # no such country
    "US0378331005",  # an ISIN
    "GB0002634946",  # a British ISIN
    "DE0007164600",  # a German ISIN
    "ES24 quarterly results 2024",
    "AB12 3456",
]


@pytest.mark.parametrize("text", NOT_IBANS)
def test_iban_look_alike_not_found(text: str) -> None:
    assert _found(find_ibans, text) == []


def test_iban_valid_needs_compact_upper_case() -> None:
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB82 WEST 1234 5698 7654 32")


EMAILS = ["jane.doe@example.com", "J.Smith+bank@mail.example.co.uk", "ops_team-1@bank.example"]


@pytest.mark.parametrize("email", EMAILS)
def test_email_found_in_a_sentence(email: str) -> None:
    text = f"Write to <{email}>."
    assert _found(find_emails, text) == [email]


def test_emails_next_to_each_other_and_after_a_stray_at() -> None:
    text = "cc: a@b.com,c.d@e.org; re @ noon x@y.io" + " pad" * 100 + " last@example.com"
    assert _found(find_emails, text) == ["a@b.com", "c.d@e.org", "x@y.io", "last@example.com"]


@pytest.mark.parametrize(
    "text", ["user@localhost", "follow @acmebank", "price@ 5 EUR", "a@b.c", "x@-bad.com"]
)
def test_email_look_alike_not_found(text: str) -> None:
    assert _found(find_emails, text) == []


PHONES = [
    "+44 20 7946 0958",
    "+1 (415) 555-1234",
    "+33 1 23 45 67 89",
    "+447700900123",
    "+49 (0)30 1234567",
    "+49 30 1234-5678",
    "020 7946 0958",
    "(020) 7946 0958",
    "07700 900123",
    "030 1234567",
    "01 23 45 67 89",
    "415-555-1234",
    "(415) 555-1234",
    "415.555.1234",
]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_found_in_a_sentence(phone: str) -> None:
    text = f"Call me on {phone}, any time."
    assert _found(find_phones, text) == [phone]


NOT_PHONES = [
    "revenue of 1,234,567.89 EUR",
    "+1,234,567.89",
    "shares rose +12.5% to 1,234.50",
    "up +3.2% year on year",
    "settled on 01-02-2024",
    "settled on 01 02 2024 at 10:30",
    "value date 01/02/2024",
    "booked 2024-03-15",
    "booked 15.03.2024",
    "sort code 12-34-56",
    "sort code 01-23-45, account 12345678",
    "ISIN US0378331005",
    "reference TX-20240315-0042",
    "transaction #0042-7781-2290",
    "account 0123456789",  # an unbroken run reads like an account number
    "balance 12345678901234",
    "balance 0 123 456 789 EUR",
    "+12 345 678 EUR",
    "rate 0.0123",
    "Q3 2024 results",
    "order 123-456-7890",  # area codes do not start with 1
    "1 234 567,89",
    "Order 415-555-1234 of 1,000 shares",  # after a reference label
    "case #: (415) 555-1234",
]


@pytest.mark.parametrize("text", NOT_PHONES)
def test_phone_look_alike_not_found(text: str) -> None:
    assert _found(find_phones, text) == []


def test_policy_find_prefers_the_earliest_then_the_longest() -> None:
    text = "card 4111 1111 1111 1111 or mail a.b@example.com or +44 20 7946 0958"
    kinds = [f.kind for f in PrivacyPolicy("mask").find(text)]
    assert kinds == ["CARD", "EMAIL", "PHONE"]


def test_an_iban_is_not_also_a_phone_or_a_card() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00"
    assert [f.kind for f in PrivacyPolicy("mask").find(text)] == ["IBAN"]
