"""The one Struct base every KMS wire shape derives from."""

import msgspec


class Shape(msgspec.Struct, rename="pascal", kw_only=True, frozen=True, omit_defaults=True):
    """A request, response or nested structure of the KMS service model.

    Fields are snake_case and travel PascalCase (irregular names carry ``field(name=...)``);
    blobs are ``bytes`` (base64 on the JSON wire), timestamps are float epoch seconds, and
    optional members default to ``msgspec.UNSET`` so they stay off the wire.
    """
