"""Signatures, record encoding and reference profiles (no I/O).

``infer_signature`` reads a DataFrame, so it (and pandas) is imported on first use:
a server worker needs signatures but never pandas.
"""

from typing import TYPE_CHECKING, Any

from finmaas.schema.encoding import RecordEncoder, encode_frame, encode_records
from finmaas.schema.profile import ReferenceProfile, build_reference_profile
from finmaas.schema.signature import (
    Feature,
    ModelSignature,
    Output,
    signature_from_dict,
    signature_from_json,
    signature_from_stored,
)

if TYPE_CHECKING:
    from finmaas.schema.infer import infer_signature

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


def __getattr__(name: str) -> Any:
    if name == "infer_signature":
        from finmaas.schema.infer import infer_signature

        return infer_signature
    raise AttributeError(f"module 'finmaas.schema' has no attribute {name!r}")
