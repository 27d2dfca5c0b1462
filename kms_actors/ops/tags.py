"""Tag operations: TagResource, UntagResource, ListResourceTags."""

from __future__ import annotations

from kms_actors.domain.principal import Caller
from kms_actors.domain.records import TagRecord
from kms_actors.errors import InvalidMarkerException
from kms_actors.keys import messages as m
from kms_actors.ops._context import Handler, Services, auth, decode_marker, or_default, page
from kms_actors.wire import shapes as w


async def tag_resource(
    s: Services, caller: Caller, req: w.TagResourceRequest
) -> w.TagResourceResponse:
    """TagResource: add or overwrite tags (at most 50 per key).

    Raises:
        TagException: A reserved ``aws:`` tag key, or too many tags.
        NotFoundException, KMSInvalidStateException: As AWS.
    """
    tags = tuple((t.tag_key, t.tag_value) for t in req.tags)
    await s.registry.ask(caller, req.key_id, m.Tag(tags), auth=auth(caller, "TagResource"))
    return w.TagResourceResponse()


async def untag_resource(
    s: Services, caller: Caller, req: w.UntagResourceRequest
) -> w.UntagResourceResponse:
    """UntagResource.

    Raises:
        NotFoundException, KMSInvalidStateException: As AWS.
    """
    await s.registry.ask(
        caller, req.key_id, m.Untag(tuple(req.tag_keys)), auth=auth(caller, "UntagResource")
    )
    return w.UntagResourceResponse()


async def list_resource_tags(
    s: Services, caller: Caller, req: w.ListResourceTagsRequest
) -> w.ListResourceTagsResponse:
    """ListResourceTags, paged with Limit (default 50) and Marker.

    Raises:
        NotFoundException: As AWS.
        InvalidMarkerException: The marker is not one this service gave out.
    """
    tags: list[TagRecord] = await s.registry.ask(
        caller, req.key_id, m.ListTags(), auth=auth(caller, "ListResourceTags")
    )
    after = decode_marker(req.marker)
    if after is not None:
        if not any(t.tag_key == after for t in tags):
            raise InvalidMarkerException("Invalid marker")
        tags = [t for t in tags if t.tag_key > after]
    items, marker = page(tags, or_default(req.limit, 50), lambda t: t.tag_key)
    entries = [w.Tag(tag_key=t.tag_key, tag_value=t.tag_value) for t in items]
    if marker is None:
        return w.ListResourceTagsResponse(tags=entries, truncated=False)
    return w.ListResourceTagsResponse(tags=entries, truncated=True, next_marker=marker)


HANDLERS: dict[str, Handler] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListResourceTags": list_resource_tags,
}
