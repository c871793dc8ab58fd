"""False positives and cost of the privacy detectors (issue 22).

Builds a corpus of ordinary financial text with no personal data — finmaas's synthetic
headlines and generated sentences with amounts, dates, percentages, balances, account
and transaction references, sort codes and ISINs — and counts what the detectors flag
(the goal is none). Then plants known values in copies of the sentences and counts how
many are found, and times detection + masking per KB of text.

    python benchmarks/privacy.py [--sentences 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import random
import string
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from finmaas.datasets.headlines import COMPANIES, generated_headlines
from finmaas.privacy import PrivacyPolicy, luhn_valid

CURRENCIES = ("EUR", "USD", "GBP", "CHF", "€", "$", "£")


def _isin(rng: random.Random) -> str:
    body = rng.choice(("US", "GB", "DE", "FR", "NL", "CH")) + "".join(
        rng.choice(string.digits + string.ascii_uppercase) for _ in range(9)
    )
    digits = "".join(str(int(char, 36)) for char in body)
    check = next(d for d in "0123456789" if luhn_valid(digits + d))
    return body + check


def _amount(rng: random.Random) -> str:
    value = rng.choice((rng.uniform(0, 1e4), rng.uniform(1e4, 1e7), rng.uniform(1e7, 1e13)))
    return rng.choice((f"{value:,.2f}", f"{value:,.0f}", f"{value:.2f}", f"{value / 1e6:.1f}m"))


def _date(rng: random.Random) -> str:
    day = date(2015, 1, 1) + timedelta(days=rng.randrange(4000))
    return rng.choice(
        (
            day.isoformat(),
            day.strftime("%d/%m/%Y"),
            day.strftime("%m/%d/%Y"),
            day.strftime("%d.%m.%Y"),
            day.strftime("%d-%m-%Y"),
            day.strftime("%d %m %Y"),
            day.strftime("%d %B %Y"),
        )
    )


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(1, 10)) + "".join(rng.choice(string.digits) for _ in range(n - 1))


TEMPLATES = (
    "{company} reported net income of {cur} {amount} for the quarter ended {date}.",
    "The closing balance on account {account} was {cur}{amount} at {date}.",
    "Ledger balance {balance}.{cents} {cur_code} as of {date}, up {pct}% on the month.",
    "Payment of {cur} {amount} to sort code {sort} account {account} settled on {date}.",
    "Transaction reference {ref} for {cur} {amount} was booked on {date} at {time}.",
    "Order {ref2} of {shares} shares in ISIN {isin} filled at {price}.",
    "Portfolio exposure to {isin} rose {pct}% to {cur} {amount}; VaR 99% at {amount}.",
    "{company} shares moved +{pct}% to {price} after results on {date}.",
    "Invoice INV-{year}-{invoice} for {cur} {amount} is due on {date}.",
    "Loan {account}/{year} carries a rate of {pct}% with {months} monthly instalments.",
    "Wire TX-{compact_date}-{seq} of {cur} {amount} cleared with value date {date}.",
    "Total assets of {cur} {big} were reported on {date} in the annual report.",
    "The fund's NAV per share was {price} on {date}, a change of -{pct}%.",
    "Settlement batch {batch} processed {shares} payments worth {cur} {amount}.",
    "Case {case} opened on {date} at {time} concerns a chargeback of {cur} {amount}.",
)


def generated_sentences(count: int, seed: int) -> list[str]:
    """``count`` financial sentences with no personal data, from ``TEMPLATES``."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        template = rng.choice(TEMPLATES)
        cur = rng.choice(CURRENCIES)
        sentences.append(
            template.format(
                company=rng.choice(COMPANIES),
                cur=cur,
                cur_code=rng.choice(("EUR", "USD", "GBP")),
                amount=_amount(rng),
                date=_date(rng),
                time=f"{rng.randrange(24):02d}:{rng.randrange(60):02d}",
                account=_digits(rng, 8),
                balance=_digits(rng, rng.randrange(10, 17)),
                cents=f"{rng.randrange(100):02d}",
                pct=f"{rng.uniform(0, 40):.{rng.randrange(3)}f}",
                sort=f"{rng.randrange(100):02d}-{rng.randrange(100):02d}-{rng.randrange(100):02d}",
                ref=_digits(rng, rng.randrange(10, 21)),
                ref2=f"{_digits(rng, 3)}-{_digits(rng, 3)}-{_digits(rng, 4)}",
                shares=f"{rng.randrange(1, 10**6):,}",
                isin=_isin(rng),
                price=f"{rng.uniform(1, 5000):.2f}",
                year=rng.randrange(2015, 2027),
                invoice=f"{rng.randrange(10**6):06d}",
                months=rng.choice((12, 24, 36, 60, 120, 240, 360)),
                compact_date=_date(rng).replace("-", "").replace("/", "")[:8],
                seq=f"{rng.randrange(10**4):04d}",
                big=f"{rng.uniform(1e9, 1e13):,.0f}",
                batch=_digits(rng, 12),
                case=f"C{_digits(rng, 9)}",
            )
        )
    return sentences


PLANTED = (
    ("CARD", "4111 1111 1111 1111"),
    ("CARD", "5555555555554444"),
    ("IBAN", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "GB82WEST12345698765432"),
    ("EMAIL", "jane.doe@example.com"),
    ("PHONE", "+44 20 7946 0958"),
    ("PHONE", "(415) 555-1234"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=5000)
    parser.add_argument("--headlines", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import finmaas.privacy"], check=True)
    import_ms = (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import finmaas.errors"], check=True)
    base_ms = (time.perf_counter() - started) * 1e3

    headlines = generated_headlines(rows=args.headlines, seed=args.seed, noise=0.0)["text"]
    corpus = [*headlines, *generated_sentences(args.sentences, args.seed)]
    policy = PrivacyPolicy("mask")

    flagged: Counter[str] = Counter()
    examples: list[str] = []
    for sentence in corpus:
        for finding in policy.find(sentence):
            flagged[finding.kind] += 1
            if len(examples) < 10:
                examples.append(
                    f"{finding.kind}: {sentence[finding.start : finding.end]!r} in {sentence!r}"
                )
    flagged_sentences = sum(1 for sentence in corpus if policy.find(sentence))

    rng = random.Random(args.seed + 1)
    found = planted = 0
    for sentence in corpus[: len(corpus) // 2]:
        kind, value = rng.choice(PLANTED)
        text = f"{sentence} Contact: {value}."
        planted += 1
        found += any(f.kind == kind and text[f.start : f.end] == value for f in policy.find(text))

    def cost(texts: list[str], rounds: int = 5) -> float:
        total_bytes = sum(len(t.encode()) for t in texts)
        best = float("inf")
        for _ in range(rounds):
            begin = time.perf_counter()
            for text in texts:
                policy.begin().protect_text(text)
            best = min(best, time.perf_counter() - begin)
        return best / (total_bytes / 1024) * 1e6

    clean_kb = [" ".join(corpus[i : i + 8]) for i in range(0, len(corpus), 8)]
    prose_kb = [" ".join(headlines[i : i + 16]) for i in range(0, len(headlines), 16)]
    dirty_kb = [
        f"{t} Card {PLANTED[0][1]}, mail {PLANTED[4][1]}, IBAN {PLANTED[2][1]}." for t in clean_kb
    ]

    print(
        f"machine: {platform.node() or 'vm'}, {platform.machine()}, Python {platform.python_version()}"
    )
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"corpus: {len(corpus):,} sentences ({len(headlines):,} headlines + {args.sentences:,} generated), "
        f"{sum(len(s.encode()) for s in corpus) / 1024:,.0f} KB"
    )
    print(
        f"false positives: {sum(flagged.values())} values in {flagged_sentences} sentences "
        f"({flagged_sentences / len(corpus):.4%}) {dict(flagged)}"
    )
    for example in examples:
        print("  ", example)
    print(f"planted values found: {found}/{planted}")
    print(
        f"detect+mask, clean number-dense text: {cost(clean_kb):.1f} µs/KB (texts of ~{sum(len(t) for t in clean_kb) / len(clean_kb) / 1024:.2f} KB)"
    )
    print(f"detect+mask, headlines only (prose, few numbers): {cost(prose_kb):.1f} µs/KB")
    print(f"detect+mask, 3 values per text: {cost(dirty_kb):.1f} µs/KB")
    print(
        f"python -c 'import finmaas.privacy': {import_ms:.0f} ms (import finmaas.errors alone: {base_ms:.0f} ms)"
    )


if __name__ == "__main__":
    main()
