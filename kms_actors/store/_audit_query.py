"""The audit queries: which records to walk, in page order, and the exact filter on each.

The indexes (schema version 3, ``_audit_migrations``) are per batch, so they narrow a query
to seq ranges, and every record in those ranges is checked against the whole filter: the
records alone decide what matches, and the results are those of a scan in seq order. A query
walks one of three sources:

- a name's ranges in ``audit_index`` (a resource, or the key of an event id), one range at a
  time in page order, each one's records in seq order: "the latest events of this key" reads
  its newest batches and stops, however many events the key has. With a time filter, ranges
  whose batch lies outside the time span are skipped without reading their records;
- with only times to go by, the batches in ``audit_batches`` whose time span meets the
  filter's (event times are close to, not exactly, in seq order: a batch's span is what
  tells), and their records;
- otherwise the records themselves.

The order ``(range, seq)`` is the seq order because one name's ranges (like the batches)
never overlap: each covers one batch. SQLite runs these as nested loops without sorting
(``CROSS JOIN`` fixes the order; ``EXPLAIN QUERY PLAN`` shows no temporary B-tree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms_actors.store._audit_migrations import R_COLUMNS, event_key, index_name

if TYPE_CHECKING:
    from kms_actors.store._audit import AuditFilter

_EQUALS = (
    "account_id",
    "region",
    "principal_arn",
    "event_name",
    "event_id",
    "access_key_id",
    "username",
)

# The first record at or after a time: in the first batch (in seq order) that reaches the
# time, unless pruning left none of that batch's late records.
CUT_SEQ = (
    "SELECT r.seq FROM audit_batches AS b"
    " CROSS JOIN audit_records AS r ON r.seq BETWEEN b.first_seq AND b.last_seq"
    " WHERE b.max_time >= ?1 AND r.event_time >= ?1 ORDER BY b.first_seq, r.seq LIMIT 1"
)


def _where(where: AuditFilter) -> tuple[list[str], list[object]]:
    """Return the exact SQL conditions on ``r`` (audit_records) and their parameters.

    The unary ``+`` keeps SQLite from reading a condition as a way into ``r``: the walk is by
    seq (an automatic index on, say, account_id would lose the page order and sort).
    """
    clauses: list[str] = []
    params: list[object] = []
    for column in _EQUALS:
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"+r.{column} = ?")
            params.append(value)
    if where.resource is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(r.resources) AS n WHERE CAST(n.value AS TEXT) = ?)"
        )
        params.append(where.resource)
    if where.event_names is not None:
        clauses.append(f"+r.event_name IN ({', '.join('?' * len(where.event_names))})")
        params.extend(where.event_names)
    if where.read_only is not None:
        clauses.append("+r.read_only = ?")
        params.append(int(where.read_only))
    if where.start is not None:
        clauses.append("+r.event_time >= ?")
        params.append(where.start)
    if where.end is not None:
        clauses.append("+r.event_time <= ?")
        params.append(where.end)
    if where.succeeded is not None:
        clauses.append("+r.error_code IS NULL" if where.succeeded else "+r.error_code IS NOT NULL")
    if where.has_key is not None:
        clauses.append("+r.key_arn IS NOT NULL" if where.has_key else "+r.key_arn IS NULL")
    return clauses, params


def _meets(where: AuditFilter) -> tuple[str, list[object]]:
    """Return a condition on batch ``b``: its time span meets the filter's (or "")."""
    clauses: list[str] = []
    params: list[object] = []
    if where.start is not None:
        clauses.append("b.max_time >= ?")
        params.append(where.start)
    if where.end is not None:
        clauses.append("b.min_time <= ?")
        params.append(where.end)
    return " AND ".join(clauses), params


def query_sql(
    where: AuditFilter, *, limit: int, after_seq: int | None, descending: bool
) -> tuple[str, list[object]]:
    """Return the SELECT (of ``R_COLUMNS``) behind ``AuditStore.query``, and its parameters."""
    if where.event_id is not None:
        name: str | None = event_key(where.event_id)
    else:
        name = index_name(where.resource) if where.resource is not None else None
    meets, params = _meets(where)
    clauses: list[str] = []
    if name is not None:
        ranges, table, same = "ix", "audit_index", "name = ? AND "
        source = "audit_index AS ix"
        clauses.append("ix.name = ?")
        if meets:
            # Skip a range only when a batch covering it lies outside the time span.
            clauses.append(
                "NOT EXISTS (SELECT 1 FROM audit_batches AS b WHERE b.first_seq = ix.first_seq"  # noqa: S608
                f" AND b.last_seq >= ix.last_seq AND NOT ({meets}))"
            )
        params.insert(0, name)
    elif meets:
        ranges, table, same = "b", "audit_batches", ""
        source = "audit_batches AS b"
        clauses.append(meets)
    else:
        ranges, table, same = "", "", ""
    if ranges:
        on = f"r.seq BETWEEN {ranges}.first_seq AND {ranges}.last_seq"
        source = f"{source} CROSS JOIN audit_records AS r ON {on}"
    else:
        source = "audit_records AS r"
    if after_seq is not None:
        if ranges and descending:
            clauses.append(f"{ranges}.first_seq < ?")
            params.append(after_seq)
        elif ranges:
            # From the range holding ``after_seq``: the last one starting at or before it.
            clauses.append(
                f"{ranges}.first_seq >= coalesce((SELECT max(first_seq) FROM {table}"  # noqa: S608
                f" WHERE {same}first_seq <= ?), ?)"
            )
            params += [*([name] if same else []), after_seq, after_seq]
        clauses.append(f"r.seq {'<' if descending else '>'} ?")
        params.append(after_seq)
    exact, exact_params = _where(where)
    clauses += exact
    params += exact_params
    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "DESC" if descending else "ASC"
    by = f"{ranges}.first_seq {order}, r.seq {order}" if ranges else f"r.seq {order}"
    # Table, column names and operators are constants of this module; values are parameters.
    sql = f"SELECT {R_COLUMNS} FROM {source}{condition} ORDER BY {by} LIMIT ?"  # noqa: S608
    return sql, [*params, limit]
