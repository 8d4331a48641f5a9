"""The start-up cross-check: refuse to serve a log whose head does not match its storage.

Checked every start, cheaply (O(log n) reads):
1. the signing key in the key file is the log's current published key;
2. the head's checkpoint verifies under a published key and states the head's size and root;
3. the stored complete subtrees recompute the head's root;
4. the last integrated leaf's bytes still hash to its stored level-0 node;
5. committed leaves are at least as many as the head says (none deleted).
A full recomputation is ``registry log verify``.
"""

from __future__ import annotations

from registry.db.tlog_store import (
    MissingNodes,
    committed_leaf_count,
    read_head,
    read_leaves,
    read_nodes,
    verifier_keys,
)
from registry.db.types import Conn
from registry.errors import LogIntegrityError
from registry.keys import LogKey
from registry.tlog.merkle import leaf_hash, root_from_nodes, root_node_ids
from registry.tlog.note import NoteError, open_note, parse_checkpoint, parse_verifier_key


async def check_log_at_start(conn: Conn, key: LogKey, origin: str) -> None:
    head = await read_head(conn)
    if head is None:
        raise LogIntegrityError("the log has no tree head: run `registry migrate`")
    keys = await verifier_keys(conn)
    current = [k["verifier_key"] for k in keys if k["valid_until"] is None]
    if current != [key.verifier]:
        raise LogIntegrityError(
            f"the signing key file holds {key.verifier}, but the log's current key is "
            f"{current[0] if current else 'none'}: restore the right key file or run "
            "`registry keys rotate`"
        )
    verifiers = [parse_verifier_key(k["verifier_key"]) for k in keys]
    try:
        text, _ = open_note(head.checkpoint, verifiers)
        checkpoint = parse_checkpoint(text)
    except (NoteError, ValueError) as error:
        raise LogIntegrityError(f"the stored checkpoint does not verify: {error}") from None
    if checkpoint.origin != origin:
        raise LogIntegrityError(
            f"the log's origin is {checkpoint.origin!r} but REGISTRY_LOG_ORIGIN is {origin!r}"
        )
    if (checkpoint.size, checkpoint.root_hash) != (head.size, head.root):
        raise LogIntegrityError("the signed checkpoint disagrees with the stored tree head")
    try:
        nodes = await read_nodes(conn, root_node_ids(head.size))
    except MissingNodes as error:
        raise LogIntegrityError(f"tree nodes are missing: {error}") from None
    if root_from_nodes(head.size, nodes) != head.root:
        raise LogIntegrityError(
            f"the stored tree nodes do not give the signed root at size {head.size}: "
            "run `registry log verify` to find the damage"
        )
    if head.size:
        last = head.size - 1
        try:
            (leaf,) = await read_leaves(conn, last, head.size)
            stored = await read_nodes(conn, [(0, last)])
        except (MissingNodes, ValueError):
            raise LogIntegrityError(f"leaf {last} is missing") from None
        if leaf_hash(leaf) != stored[(0, last)]:
            raise LogIntegrityError(f"leaf {last} does not match its stored hash")
    if await committed_leaf_count(conn) < head.size:
        raise LogIntegrityError("fewer leaves are stored than the signed tree head covers")
