"""The fiscal and carrier-payment activities against the simulators over HTTP (Temporal's
ActivityEnvironment)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.carrier_payments import CarrierPaymentActivities
from activities.fiscal import FiscalActivities
from conftest import wait_for
from domain.marking import generate_marking_code
from test_cdek import booking, cdek_env
from test_fiscal import GTIN, fiscal_env, prepaid_receipt


async def test_fiscal_activities(make_sandbox: Any) -> None:
    async with fiscal_env(make_sandbox) as (_sb, client, _raw):
        acts, env = FiscalActivities(client), ActivityEnvironment()
        receipt = prepaid_receipt("ACT1", generate_marking_code(GTIN, random.Random(1)).text())
        first = await env.run(acts.register_receipt, receipt)
        assert (await env.run(acts.register_receipt, receipt)).uuid == first.uuid  # a retried activity: one receipt

        async def done() -> Any:
            report = await env.run(acts.receipt_status, first.uuid)
            return report if report.status == "done" else None

        assert (await wait_for(done)).total == 649_100
        with pytest.raises(ApplicationError) as err:
            await env.run(acts.receipt_status, "00000000-0000-0000-0000-000000000000")
        assert err.value.type == "FiscalRefused" and err.value.non_retryable


async def test_carrier_payment_activities(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, raw):
        acts, env = CarrierPaymentActivities(client), ActivityEnvironment()
        b = await client.book(booking("SHP-ACT-1", cash_on_delivery=True, try_on=True))
        await raw.post(f"/sandbox/courier/orders/{b.external_id}/deliver-partial",
                       json={"kept": [{"ware_key": "SKU-2", "qty": 2}], "payment": "cash"})
        outcome = await env.run(acts.delivery_outcome, b.external_id)
        assert outcome.collected == 2 * 150_050 and [i.refused for i in outcome.items] == [1, 0]
        await raw.post("/sandbox/courier/registries")
        (registry,) = await env.run(acts.cod_registries, datetime.now(UTC).date().isoformat())
        # 3 001.00 collected, 3 % = 90.03 kept by CDEK, 2 910.97 transferred
        assert (registry.lines[0].collected, registry.lines[0].fee, registry.total) == (300_100, 9_003, 291_097)
