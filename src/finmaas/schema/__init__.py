"""Signatures, record encoding and reference profiles (no I/O)."""

from finmaas.schema.encoding import RecordEncoder, encode_frame, encode_records
from finmaas.schema.infer import infer_signature
from finmaas.schema.profile import ReferenceProfile, build_reference_profile
from finmaas.schema.signature import (
    Feature,
    ModelSignature,
    Output,
    signature_from_dict,
    signature_from_json,
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
]
