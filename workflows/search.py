"""Custom search attributes, so support can find orders in the Temporal web UI.

``OrderId``, ``CustomerPhoneHash``, ``OrderStatus``, ``StoreId`` and ``Channel`` (all Keyword) must be
registered on the namespace (dev server: ``--search-attribute NAME=Keyword`` each; a cluster:
``temporal operator search-attribute create --name NAME --type Keyword``).

The rule: *the starter decides*. A workflow started with ``OrderId`` among its search attributes
(the API's order placement does that, and an order passes them on to its fulfillment children) keeps
``OrderStatus`` / ``StoreId`` current as it moves. A workflow started without them (an older running
order, a test on a server that does not know these attributes, the ERP sync) upserts nothing. The
decision comes from the start event, so it is deterministic, and workflows already running when this
was deployed replay unchanged (they were started without the attributes).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
CUSTOMER_PHONE_HASH = SearchAttributeKey.for_keyword("CustomerPhoneHash")
ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
STORE_ID = SearchAttributeKey.for_keyword("StoreId")
CHANNEL = SearchAttributeKey.for_keyword("Channel")

#: every custom attribute, in the order the docs list them (all Keyword)
KEYS = [ORDER_ID, CUSTOMER_PHONE_HASH, ORDER_STATUS, STORE_ID, CHANNEL]
NAMES = [k.name for k in KEYS]


def initial(order_id: str, phone_hash: str, channel: str, status: str = "pending",
            store_id: str | None = None) -> TypedSearchAttributes:
    """What the starter (the API) passes to ``start_workflow(search_attributes=...)``."""
    pairs = [SearchAttributePair(ORDER_ID, order_id), SearchAttributePair(CUSTOMER_PHONE_HASH, phone_hash),
             SearchAttributePair(CHANNEL, channel), SearchAttributePair(ORDER_STATUS, status)]
    if store_id:
        pairs.append(SearchAttributePair(STORE_ID, store_id))
    return TypedSearchAttributes(pairs)


def tracked() -> bool:
    """Whether this workflow was started with the order's search attributes (see the module doc)."""
    return workflow.info().typed_search_attributes.get(ORDER_ID) is not None


def upsert(status: str, store_id: str | None = None) -> None:
    """Set ``OrderStatus`` (and ``StoreId`` once known) if they changed; nothing for untracked workflows."""
    if not tracked():
        return
    current = workflow.info().typed_search_attributes
    updates = []
    if current.get(ORDER_STATUS) != status:
        updates.append(ORDER_STATUS.value_set(status))
    if store_id and current.get(STORE_ID) != store_id:
        updates.append(STORE_ID.value_set(store_id))
    if updates:
        workflow.upsert_search_attributes(updates)


def for_child(status: str, store_id: str | None) -> TypedSearchAttributes | None:
    """A child inherits the order's id, phone hash and channel; ``None`` when this workflow is untracked."""
    if not tracked():
        return None
    current = workflow.info().typed_search_attributes
    pairs = [SearchAttributePair(k, v) for k in (ORDER_ID, CUSTOMER_PHONE_HASH, CHANNEL)
             if (v := current.get(k)) is not None]
    pairs.append(SearchAttributePair(ORDER_STATUS, status))
    if store_id:
        pairs.append(SearchAttributePair(STORE_ID, store_id))
    return TypedSearchAttributes(pairs)
