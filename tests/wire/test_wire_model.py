"""The model, the operation catalogue and the generated shapes agree with botocore and each
other."""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.session
import msgspec
import pytest
from botocore import xform_name

from kms_actors.errors import UnknownOperationException
from kms_actors.wire import (
    OPERATIONS,
    Shape,
    _model,
    operation_for_method,
    request_type,
    response_type,
    shapes,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
BOTOCORE_KMS = botocore.session.get_session().get_service_model("kms")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_wire", ROOT / "scripts" / "gen_wire.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_56_operations() -> None:
    assert len(OPERATIONS) == 56
    assert {"Encrypt", "GenerateDataKeyWithoutPlaintext", "ReEncrypt", "VerifyMac"} <= OPERATIONS


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_method_names_round_trip_like_botocore(operation: str) -> None:
    method = xform_name(operation)
    assert operation_for_method(method) == operation


def test_the_model_covers_every_operation_of_the_installed_botocore() -> None:
    # The committed model may be newer than the installed botocore (whose version the AWS CLI
    # pins), never older.
    assert set(BOTOCORE_KMS.operation_names) <= OPERATIONS


def test_unknown_method_names() -> None:
    assert operation_for_method("generate_data_key_without_plaintext") == (
        "GenerateDataKeyWithoutPlaintext"
    )
    assert operation_for_method("GenerateDataKey") is None
    assert operation_for_method("generate_Data_key") is None
    assert operation_for_method("no_such_thing") is None


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_has_request_and_response_types(operation: str) -> None:
    request, response = request_type(operation), response_type(operation)
    assert issubclass(request, Shape) and issubclass(response, Shape)
    assert request.__name__ == _model.operation(operation).input.shape
    output = _model.operation(operation).output
    assert response.__name__ == (output.shape if output else f"{operation}Response")
    assert getattr(shapes, request.__name__) is request


def test_structures_without_members_still_have_classes() -> None:
    empty = [
        name
        for name, shape in _model.MODEL.shapes.items()
        if shape.type == "structure" and not shape.exception and not shape.members
    ]
    assert "ConnectCustomKeyStoreResponse" in empty
    for name in empty:
        cls = getattr(shapes, name)
        assert not msgspec.structs.fields(cls)
        assert msgspec.json.encode(cls()) == b"{}"


def test_operations_without_output_answer_an_empty_shape() -> None:
    assert _model.operation("TagResource").output is None
    assert response_type("TagResource") is shapes.TagResourceResponse
    assert msgspec.json.encode(shapes.TagResourceResponse()) == b"{}"


def test_unknown_operations_are_rejected() -> None:
    for lookup in (request_type, response_type, _model.operation):
        with pytest.raises(UnknownOperationException):
            lookup("Nope")
    with pytest.raises(UnknownOperationException):
        validate("Nope", {}, blobs_are_base64=True)


def _struct_classes() -> list[type[Shape]]:
    return [
        cls
        for cls in vars(shapes).values()
        if isinstance(cls, type) and issubclass(cls, Shape) and cls is not Shape
    ]


def test_shape_fields_carry_the_model_member_names() -> None:
    classes = _struct_classes()
    modelled = [cls for cls in classes if cls.__name__ in _model.MODEL.shapes]
    assert len(modelled) == len(classes) - (56 - 42)  # one synthetic response per no-output op
    for cls in modelled:
        members = _model.shape(cls.__name__).members
        fields = msgspec.structs.fields(cls)
        assert [field.encode_name for field in fields] == list(members), cls.__name__
        for field in fields:
            assert field.name == xform_name(field.encode_name), (cls.__name__, field.name)
            required = field.encode_name in _model.shape(cls.__name__).required
            assert (field.default is msgspec.NODEFAULT) == required


def test_irregular_member_names_survive() -> None:
    fields = {f.name: f.encode_name for f in msgspec.structs.fields(shapes.KeyMetadata)}
    assert fields["aws_account_id"] == "AWSAccountId"
    assert fields["key_id"] == "KeyId"
    metadata = shapes.KeyMetadata(key_id="k", aws_account_id="111122223333")
    assert msgspec.to_builtins(metadata) == {"KeyId": "k", "AWSAccountId": "111122223333"}


def test_field_types_follow_the_model() -> None:
    hints: dict[str, Any] = {f.name: f.type for f in msgspec.structs.fields(shapes.EncryptRequest)}
    assert hints["key_id"] is str
    assert hints["plaintext"] is bytes
    assert hints["encryption_context"] == dict[str, str] | msgspec.UnsetType
    assert hints["grant_tokens"] == list[str] | msgspec.UnsetType
    hints = {f.name: f.type for f in msgspec.structs.fields(shapes.KeyMetadata)}
    assert hints["creation_date"] == float | msgspec.UnsetType
    assert hints["enabled"] == bool | msgspec.UnsetType
    hints = {f.name: f.type for f in msgspec.structs.fields(shapes.ListKeysRequest)}
    assert hints["limit"] == int | msgspec.UnsetType
    hints = {f.name: f.type for f in msgspec.structs.fields(shapes.CreateKeyRequest)}
    assert hints["tags"] == list[shapes.Tag] | msgspec.UnsetType


def test_model_json_is_pruned_and_compact() -> None:
    text = resources.files("kms_actors.wire").joinpath(_model.MODEL_RESOURCE).read_text()
    assert "documentation" not in text
    assert "\n" not in text.rstrip("\n")
    raw = json.loads(text)
    assert raw["metadata"]["targetPrefix"] == "TrentService"
    assert raw["shapes"]["PlaintextType"] == {
        "type": "blob",
        "max": 4096,
        "min": 1,
        "sensitive": True,
    }
    assert raw["shapes"]["NotFoundException"]["exception"] is True


def test_pruning_keeps_every_constraint() -> None:
    # Against the installed botocore, whatever its version: the committed JSON may be older.
    generator = _generator()
    pruned = generator.prune(generator.load_botocore_model())
    assert "documentation" not in json.dumps(pruned)
    for name, shape in pruned["shapes"].items():
        ours = msgspec.convert(shape, _model.ShapeDef)
        theirs = BOTOCORE_KMS.shape_for(name)
        assert ours.type == theirs.type_name, name
        metadata = theirs.metadata
        assert ours.min == metadata.get("min") and ours.max == metadata.get("max"), name
        assert ours.pattern == metadata.get("pattern"), name
        assert ours.enum == metadata.get("enum", []), name
        assert ours.sensitive == metadata.get("sensitive", False), name
        assert list(ours.members) == list(getattr(theirs, "members", {})), name
        assert ours.required == metadata.get("required", []), name


def test_generated_shapes_match_the_committed_model() -> None:
    generator = _generator()
    pruned = json.loads((ROOT / "kms_actors" / "wire" / "kms-2014-11-01.json").read_text())
    expected = generator.ruff_format(generator.render_shapes(pruned), generator.SHAPES_PATH)
    assert (ROOT / "kms_actors" / "wire" / "_shapes.py").read_text() == expected
