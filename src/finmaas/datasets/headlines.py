"""Synthetic financial headlines labelled ``positive``, ``negative`` or ``neutral``.

Generated from templates, deterministically from a seed, so tests and examples
need no download and no licence: a company, a verb phrase whose tone sets the
label, and a detail shared by all tones (so a model must read the verb phrase).
A ``noise`` share of labels is random. Real text is harder; these exist to
exercise the sentiment template end to end.
"""

from __future__ import annotations

import random

import pandas as pd

COMPANIES = (
    "Acme Bank", "Northwind Capital", "Globex", "Initech", "Umbrella Insurance", "Stark Lending",
    "Wayne Financial", "Hooli", "Vandelay Imports", "Soylent Foods", "Tyrell Holdings", "Cyberdyne",
)  # fmt: skip
PHRASES = {
    "positive": (
        "beats profit estimates", "raises full-year guidance", "reports record revenue",
        "wins a major contract", "upgraded to buy by analysts", "lifts its dividend",
        "shares surge after strong results", "cuts costs and grows margins",
    ),
    "negative": (
        "misses profit estimates", "cuts full-year guidance", "reports a quarterly loss",
        "loses a major client", "downgraded to sell by analysts", "suspends its dividend",
        "shares slump after weak results", "faces a regulatory probe",
    ),
    "neutral": (
        "schedules its annual meeting", "names a new board member", "confirms results date",
        "moves its headquarters", "files its quarterly report", "keeps its dividend unchanged",
        "shares trade flat ahead of results", "completes a planned system migration",
    ),
}  # fmt: skip
DETAILS = (
    "", "in the third quarter", "amid market volatility", "as rates stay high",
    "in European trading", "according to a statement", "on Tuesday", "for the fiscal year",
)  # fmt: skip


def generated_headlines(rows: int = 600, seed: int = 0, noise: float = 0.1) -> pd.DataFrame:
    """``rows`` headlines (``text``) and their ``label``, classes in equal shares;
    a ``noise`` share of the labels is then drawn at random, as annotators
    disagree, so no model can be perfect (expect macro-F1 near ``1 - noise``)."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
    labels = list(PHRASES)
    records = []
    for i in range(rows):
        label = labels[i % len(labels)]
        detail = rng.choice(DETAILS)
        text = f"{rng.choice(COMPANIES)} {rng.choice(PHRASES[label])}" + (
            f" {detail}" if detail else ""
        )
        if rng.random() < noise:
            label = rng.choice(labels)
        records.append({"text": text, "label": label})
    rng.shuffle(records)
    return pd.DataFrame.from_records(records, columns=["text", "label"])
