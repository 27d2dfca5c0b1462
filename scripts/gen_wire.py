"""Generate ``kms_actors/wire``'s service model and shape classes from botocore's KMS model.

Run it with the project's venv after upgrading botocore::

    .venv/bin/python scripts/gen_wire.py          # rewrite the generated files
    .venv/bin/python scripts/gen_wire.py --check  # exit 1 if they are stale

It writes two files, both committed, because botocore is only a dev/test dependency and the
runtime must never import it:

- ``kms_actors/wire/kms-2014-11-01.json``: the model without documentation, compact.
- ``kms_actors/wire/_shapes.py``: one ``Shape`` subclass per non-exception structure, plus an
  empty ``<Operation>Response`` for each operation the model gives no output, ordered so every
  class is defined before a later one refers to it, then formatted with ruff.
"""

from __future__ import annotations

import argparse
import json
import keyword
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from botocore import xform_name
from botocore.loaders import create_loader

ROOT = Path(__file__).resolve().parent.parent
WIRE = ROOT / "kms_actors" / "wire"
API_VERSION = "2014-11-01"
MODEL_PATH = WIRE / f"kms-{API_VERSION}.json"
SHAPES_PATH = WIRE / "_shapes.py"

SHAPE_KEYS = (
    "type",
    "members",
    "required",
    "min",
    "max",
    "enum",
    "pattern",
    "sensitive",
    "member",
    "key",
    "value",
    "exception",
    "fault",
    "deprecated",
)
OPERATION_KEYS = ("name", "input", "output", "errors")
SCALAR_TYPES = {
    "string": "str",
    "blob": "bytes",
    "integer": "int",
    "long": "int",
    "boolean": "bool",
    "timestamp": "float",
    "float": "float",
    "double": "float",
}

Model = dict[str, Any]


def load_botocore_model() -> Model:
    """Load botocore's KMS service model, documentation and all."""
    model: Model = create_loader().load_service_model("kms", "service-2", API_VERSION)
    return model


def _ref(ref: Model) -> Model:
    # A member ref keeps its deprecation flag; its documentation goes.
    return {key: ref[key] for key in ("shape", "deprecated") if key in ref}


def prune(model: Model) -> Model:
    """Return the model without documentation: only what validation and typing need."""
    operations: Model = {}
    for name, operation in model["operations"].items():
        kept: Model = {}
        for key in OPERATION_KEYS:
            if key not in operation:
                continue
            value = operation[key]
            if key == "errors":
                kept[key] = [_ref(error) for error in value]
            elif key in ("input", "output"):
                kept[key] = _ref(value)
            else:
                kept[key] = value
        operations[name] = kept
    shapes: Model = {}
    for name, shape in model["shapes"].items():
        kept = {key: shape[key] for key in SHAPE_KEYS if key in shape}
        if "members" in kept:
            kept["members"] = {member: _ref(ref) for member, ref in kept["members"].items()}
        for key in ("member", "key", "value"):
            if key in kept:
                kept[key] = _ref(kept[key])
        shapes[name] = kept
    return {
        "version": model["version"],
        "metadata": model["metadata"],
        "operations": operations,
        "shapes": shapes,
    }


def render_model(pruned: Model) -> str:
    """Serialise the pruned model compactly, keeping the model's member order."""
    return json.dumps(pruned, separators=(",", ":"), ensure_ascii=False) + "\n"


def pascal(field: str) -> str:
    """Return the wire name msgspec's ``rename="pascal"`` gives ``field``."""
    probe = msgspec.defstruct("Probe", [(field, int)], rename="pascal")
    return msgspec.structs.fields(probe)[0].encode_name


def annotation(shapes: Model, name: str) -> str:
    """Return the Python type annotation for a member of shape ``name``."""
    shape = shapes[name]
    kind = shape["type"]
    if kind in SCALAR_TYPES:
        return SCALAR_TYPES[kind]
    if kind == "list":
        return f"list[{annotation(shapes, shape['member']['shape'])}]"
    if kind == "map":
        key = annotation(shapes, shape["key"]["shape"])
        return f"dict[{key}, {annotation(shapes, shape['value']['shape'])}]"
    if kind == "structure":
        return name
    raise ValueError(f"shape {name} has unsupported type {kind}")


def _structures_in(shapes: Model, name: str) -> Iterator[str]:
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        yield name
    elif kind == "list":
        yield from _structures_in(shapes, shape["member"]["shape"])
    elif kind == "map":
        yield from _structures_in(shapes, shape["value"]["shape"])


def ordered_structures(shapes: Model) -> list[str]:
    """Return the non-exception structures, each after every structure it refers to."""
    done: set[str] = set()
    visiting: set[str] = set()
    order: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise ValueError(f"shape {name} is recursive; generated classes need reordering")
        visiting.add(name)
        for ref in shapes[name].get("members", {}).values():
            for dependency in _structures_in(shapes, ref["shape"]):
                visit(dependency)
        visiting.discard(name)
        done.add(name)
        order.append(name)

    for name in sorted(shapes):
        shape = shapes[name]
        if shape["type"] == "structure" and not shape.get("exception"):
            visit(name)
    return order


def _field_line(shapes: Model, member: str, ref: Model, required: bool) -> tuple[str, str]:
    field = xform_name(member)
    if keyword.iskeyword(field):
        field += "_"
    hint = annotation(shapes, ref["shape"])
    renamed = pascal(field) != member
    if required:
        default = f' = msgspec.field(name="{member}")' if renamed else ""
        return field, f"    {field}: {hint}{default}"
    default = (
        f'msgspec.field(default=msgspec.UNSET, name="{member}")' if renamed else "msgspec.UNSET"
    )
    return field, f"    {field}: {hint} | msgspec.UnsetType = {default}"


def render_shapes(pruned: Model) -> str:
    """Render ``_shapes.py`` (before formatting)."""
    shapes = pruned["shapes"]
    roles: dict[str, str] = {}
    for name, operation in pruned["operations"].items():
        roles[operation["input"]["shape"]] = f"Input of ``{name}``."
        if "output" in operation:
            roles[operation["output"]["shape"]] = f"Output of ``{name}``."
    lines = [
        f"# Generated by scripts/gen_wire.py from botocore's KMS model {API_VERSION}. Do not edit.",
        '"""Wire shapes of the AWS KMS API: a Struct per non-exception structure of the model."""',
        "",
        "import msgspec",
        "",
        "from kms_actors.wire._base import Shape",
    ]
    # Operations without output answer with an empty structure; name it like the others.
    empty = {"type": "structure", "members": {}}
    for name, operation in pruned["operations"].items():
        if "output" not in operation:
            response = f"{name}Response"
            if response in shapes:
                raise ValueError(f"{response} already names a model shape")
            shapes = {**shapes, response: empty}
            roles[response] = f"Output of ``{name}``, which the model leaves empty."
    for name in ordered_structures(shapes):
        shape = shapes[name]
        # mypy does not carry Struct options over to subclasses, so each class restates them.
        lines += ["", "", f"class {name}(Shape, frozen=True, kw_only=True):"]
        lines.append(f'    """{roles.get(name, f"The ``{name}`` structure.")}"""')
        required = set(shape.get("required", []))
        seen: dict[str, str] = {}
        members = shape.get("members", {})
        if members:
            lines.append("")
        for member, ref in members.items():
            field, line = _field_line(shapes, member, ref, member in required)
            if field in seen:
                raise ValueError(f"{name}: {member} and {seen[field]} both map to {field}")
            seen[field] = member
            lines.append(line)
    return "\n".join(lines) + "\n"


def ruff_format(source: str, path: Path) -> str:
    """Format ``source`` with ruff as if it lived at ``path`` (so the project config applies)."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` verify) the generated files; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)

    pruned = prune(load_botocore_model())
    outputs = {
        MODEL_PATH: render_model(pruned),
        SHAPES_PATH: ruff_format(render_shapes(pruned), SHAPES_PATH),
    }
    stale = [path for path, text in outputs.items() if not _same(path, text)]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run scripts/gen_wire.py)")
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    print(
        f"{len(pruned['operations'])} operations, {outputs[SHAPES_PATH].count('(Shape,')} classes"
    )
    return 0


def _same(path: Path, text: str) -> bool:
    return path.exists() and path.read_text(encoding="utf-8") == text


if __name__ == "__main__":
    sys.exit(main())
