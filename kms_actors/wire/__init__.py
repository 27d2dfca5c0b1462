"""AWS KMS request and response shapes, driven by botocore's service model.

How it is built: ``scripts/gen_wire.py`` (run by hand; botocore is a dev dependency only)
prunes botocore's KMS model into ``kms-2014-11-01.json`` and generates ``_shapes.py``, one
frozen msgspec Struct per structure of the model. At run time ``_model`` loads the JSON once,
``_validate`` (on ``_scalars``) compiles each shape's checks on first use and reports failures
in AWS's words (``_messages``), and ``_convert`` turns requests into Structs and responses into
JSON or boto3's dicts.
"""

from kms_actors.wire import _shapes as shapes
from kms_actors.wire._base import Shape
from kms_actors.wire._convert import decode_json_request, decode_request, to_json, to_python
from kms_actors.wire._model import OPERATIONS, operation_for_method, request_type, response_type
from kms_actors.wire._validate import validate

__all__ = [
    "OPERATIONS",
    "Shape",
    "decode_json_request",
    "decode_request",
    "operation_for_method",
    "request_type",
    "response_type",
    "shapes",
    "to_json",
    "to_python",
    "validate",
]
