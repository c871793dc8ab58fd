"""Signatures, record encoding and reference profiles (no I/O).

The public names are imported on first use (PEP 562): the registry needs
signatures but not numpy (encoding and profiles), so ``finmaas models list``
does not pay for it, and ``infer_signature`` reads a DataFrame, so a server
worker never pays for pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finmaas.lazy import lazy_names

if TYPE_CHECKING:
    from finmaas.schema.encoding import RecordEncoder, encode_frame, encode_records
    from finmaas.schema.infer import infer_signature
    from finmaas.schema.profile import ReferenceProfile, build_reference_profile
    from finmaas.schema.signature import (
        Feature,
        ModelSignature,
        Output,
        signature_from_dict,
        signature_from_json,
        signature_from_stored,
    )

__all__ = [
    "Feature",
    "ModelSignature",
    "Output",
    "RecordEncoder",
    "ReferenceProfile",
    "build_reference_profile",
    "encode_frame",
    "encode_records",
    "infer_signature",
    "signature_from_dict",
    "signature_from_json",
    "signature_from_stored",
]

_HOMES = {
    "Feature": "finmaas.schema.signature",
    "ModelSignature": "finmaas.schema.signature",
    "Output": "finmaas.schema.signature",
    "RecordEncoder": "finmaas.schema.encoding",
    "ReferenceProfile": "finmaas.schema.profile",
    "build_reference_profile": "finmaas.schema.profile",
    "encode_frame": "finmaas.schema.encoding",
    "encode_records": "finmaas.schema.encoding",
    "infer_signature": "finmaas.schema.infer",
    "signature_from_dict": "finmaas.schema.signature",
    "signature_from_json": "finmaas.schema.signature",
    "signature_from_stored": "finmaas.schema.signature",
}

__getattr__ = lazy_names(__name__, _HOMES)
