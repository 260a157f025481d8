"""CDEK try-on and partial delivery, cash on delivery and the COD registry, over real HTTP:
the simulator's drive endpoint, CdekClient.delivery_outcome / cod_registries, the webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import wait_for
from adapters.errors import ExternalUnavailable
from test_cdek import booking, cdek_env, webhook_receiver

# the booking of tests/integration/test_cdek.py: a dress SKU-1 (4 990.00) and 2 belts SKU-2 (1 500.50 each)


async def test_try_on_keeps_the_dress_refuses_a_belt_cash_on_delivery(make_sandbox: Any, serve: Any) -> None:
    async with webhook_receiver(serve) as (url, received), cdek_env(make_sandbox) as (_sb, client, raw):
        await client.register_webhook(url)
        b = await client.book(booking("SHP-TRY-1", cash_on_delivery=True, delivery_charge=30_000, try_on=True))
        body = client.order_body(booking("SHP-TRY-1", cash_on_delivery=True, delivery_charge=30_000, try_on=True))
        assert [i["payment"]["value"] for i in body["packages"][0]["items"]] == [4990.0, 1500.5]
        assert body["delivery_recipient_cost"] == {"value": 300.0}
        assert {s["code"] for s in body["services"]} == {"TRYING_ON", "PART_DELIV"}

        resp = await raw.post(f"/sandbox/courier/orders/{b.external_id}/deliver-partial",
                              json={"kept": [{"ware_key": "SKU-1", "qty": 1}, {"sku": "SKU-2", "qty": 1}], "payment": "card"})
        assert resp.status_code == 200, resp.text
        outcome = await client.delivery_outcome(b.external_id)
        assert outcome.delivered and outcome.partial
        assert [(i.ware_key, i.ordered, i.kept, i.refused) for i in outcome.items] == [("SKU-1", 1, 1, 0), ("SKU-2", 2, 1, 1)]
        # collected: the dress 4 990.00 + one belt 1 500.50 + the delivery 300.00 = 6 790.50
        assert outcome.collected == 499_000 + 150_050 + 30_000 == 679_050
        assert outcome.payment_type == "CARD" and outcome.delivered_on == datetime.now(UTC).date().isoformat()
        assert outcome.return_order_id

        # the refused belt travels back on CDEK's return order, announced by its webhooks
        async def return_created() -> dict[str, Any] | None:
            return next((w for w in received if w["uuid"] == outcome.return_order_id), None)

        hook = await wait_for(return_created)
        attrs = hook["attributes"]
        assert attrs["is_return"] and attrs["number"] == "SHP-TRY-1" and attrs["code"] == "CREATED"
        assert attrs["related_entities"] == [{"type": "direct_order", "uuid": b.external_id, "cdek_number": b.tracking_number}]
        back = await client.order(outcome.return_order_id)
        assert [(i["ware_key"], i["amount"], i["payment"]["value"]) for i in back["packages"][0]["items"]] == [("SKU-2", 1, 0)]
        assert any(w["uuid"] == b.external_id and w["attributes"]["code"] == "DELIVERED" for w in received)

        # CDEK forms its COD registry; what it transfers is the collected sum less its 3 % fee
        registry = (await raw.post("/sandbox/courier/registries")).json()
        assert registry["sum"] == 679_050 - 679_050 * 30 // 1000
        regs = await client.cod_registries(datetime.now(UTC).date())
        assert len(regs) == 1 and regs[0].payment_order
        line = regs[0].lines[0]
        assert (line.tracking_number, line.collected, line.fee) == (b.tracking_number, 679_050, 20_371)
        assert line.transferred == 679_050 - 20_371 == regs[0].total
        assert (await raw.post("/sandbox/courier/registries")).status_code == 409  # nothing new to register


async def test_prepaid_partial_collects_nothing_and_full_refusal(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, raw):
        prepaid = await client.book(booking("SHP-TRY-2", try_on=True))
        resp = await raw.post(f"/sandbox/courier/orders/{prepaid.external_id}/deliver-partial",
                              json={"kept": [{"ware_key": "SKU-2", "qty": 2}], "payment": "prepaid"})
        assert resp.status_code == 200
        outcome = await client.delivery_outcome(prepaid.external_id)
        assert outcome.collected == 0 and outcome.payment_type is None
        assert [(i.ware_key, i.kept) for i in outcome.items] == [("SKU-1", 0), ("SKU-2", 2)]
        # a cash-on-delivery order cannot be handed over as "prepaid"
        cod = await client.book(booking("SHP-TRY-3", cash_on_delivery=True))
        resp = await raw.post(f"/sandbox/courier/orders/{cod.external_id}/deliver-partial",
                              json={"kept": [{"ware_key": "SKU-1", "qty": 1}], "payment": "prepaid"})
        assert resp.status_code == 422 and "card or cash" in resp.json()["detail"]
        for bad in ([{"ware_key": "NOPE", "qty": 1}], [{"ware_key": "SKU-2", "qty": 3}]):
            resp = await raw.post(f"/sandbox/courier/orders/{cod.external_id}/deliver-partial", json={"kept": bad, "payment": "cash"})
            assert resp.status_code == 422
        # everything refused: nothing collected, no delivery charge, every unit goes back
        resp = await raw.post(f"/sandbox/courier/orders/{cod.external_id}/deliver-partial", json={"kept": [], "payment": "cash"})
        outcome = await client.delivery_outcome(cod.external_id)
        assert outcome.collected == 0 and sum(i.refused for i in outcome.items) == 3 and outcome.return_order_id
        # handed over already: a second hand-over is refused
        again = await raw.post(f"/sandbox/courier/orders/{cod.external_id}/deliver-partial", json={"kept": [], "payment": "cash"})
        assert again.status_code == 409


async def test_plain_delivery_of_a_cod_order_is_collected_whole(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, raw):
        b = await client.book(booking("SHP-COD-4", cash_on_delivery=True, delivery_charge=25_000))
        await raw.post(f"/sandbox/courier/orders/{b.external_id}/status", json={"code": "DELIVERED"})
        outcome = await client.delivery_outcome(b.external_id)
        # 4 990.00 + 2 × 1 500.50 + 250.00 = 8 241.00
        assert outcome.collected == 499_000 + 2 * 150_050 + 25_000 == 824_100 and outcome.payment_type == "CASH"
        assert not outcome.partial and outcome.return_order_id is None
        await raw.post("/sandbox/cdek/faults", json={"fail_next": 1, "status": 503, "operations": ["registries"]})
        with pytest.raises(ExternalUnavailable):
            await client.cod_registries(datetime.now(UTC).date())
        assert await client.cod_registries(datetime.now(UTC).date()) == []  # not formed yet
