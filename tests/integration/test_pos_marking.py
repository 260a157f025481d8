"""Marking codes at assembly: the POS simulator's "assembled" takes the code scanned for each
marked unit and sends it in the event; Orkestr's PosEvent parses it (and still parses events
without codes). Over real HTTP, the store played by the drive endpoints."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

from domain.marking import generate_marking_code, gtin_from_barcode, parse_marking_code
from adapters.wire.pos import PosLine, PosTask, PosTaskKind
from sandbox.demo_data import marked
from test_pos import DEMO, STORE, pos_sandbox

MARKED = next(s for p in DEMO.products if marked(p.category) for s in p.skus)
PLAIN = next(s for p in DEMO.products if not marked(p.category) for s in p.skus)


def assemble_task(callback_url: str, task_id: str) -> PosTask:
    return PosTask(task_id=task_id, kind=PosTaskKind.ASSEMBLE, order_id="ord-m", order_number="WEB-M",
                   lines=(PosLine(MARKED.sku, "Туфли", 2), PosLine(PLAIN.sku, "Футболка", 1)),
                   due_at=datetime(2026, 12, 1, tzinfo=timezone.utc), callback_url=callback_url)


def code(barcode: str, seed: int) -> str:
    return generate_marking_code(gtin_from_barcode(barcode), random.Random(seed)).text()


async def test_assembled_carries_a_code_per_marked_unit(make_sandbox: Any, serve: Any) -> None:
    async with pos_sandbox(make_sandbox, serve) as (orkestr, callback_url, pos, drive):
        await pos.create_task(location_id=STORE, task=assemble_task(callback_url, "TM-1"))
        base = f"/sandbox/pos/{STORE}/tasks/TM-1/assembled"
        first, second = code(MARKED.barcode, 1), code(MARKED.barcode, 2)
        for bad, why in (
            ({MARKED.sku: ["0104600000000000"]}, "bad_marking_code"),  # not a code
            ({MARKED.sku: [code(PLAIN.barcode, 3)]}, "bad_marking_code"),  # another product's GTIN
            ({MARKED.sku: [first, first]}, "duplicate_marking_code"),
            ({MARKED.sku: [first, second, code(MARKED.barcode, 4)]}, "too_many_codes"),
            ({"NO-SUCH": [first]}, "unknown_line"),
        ):
            resp = await drive.post(base, json={"marking_codes": bad})
            assert resp.status_code == 422 and resp.json()["detail"]["code"] == why
        resp = await drive.post(base, json={"marking_codes": {MARKED.sku: [first, second]}})
        assert resp.status_code == 200 and resp.json()["callback_status"] == 200
        (event,) = await orkestr.wait_for(1)
        lines = {ln.sku: ln for ln in event.lines}
        assert lines[MARKED.sku].marking_codes == (first, second)
        assert lines[PLAIN.sku].marking_codes == ()
        assert [parse_marking_code(c).gtin for c in lines[MARKED.sku].marking_codes] == [gtin_from_barcode(MARKED.barcode)] * 2


async def test_old_event_shape_without_codes_still_parses(make_sandbox: Any, serve: Any) -> None:
    async with pos_sandbox(make_sandbox, serve) as (orkestr, callback_url, pos, drive):
        await pos.create_task(location_id=STORE, task=assemble_task(callback_url, "TM-2"))
        resp = await drive.post(f"/sandbox/pos/{STORE}/tasks/TM-2/assembled")
        assert resp.status_code == 200
        assert all("marking_codes" not in ln for ln in resp.json()["event"]["lines"])
        (event,) = await orkestr.wait_for(1)
        assert all(ln.marking_codes == () for ln in event.lines)


async def test_auto_mode_scans_valid_codes(make_sandbox: Any, serve: Any) -> None:
    async with pos_sandbox(make_sandbox, serve, auto=True, auto_delay_s=0.05) as (orkestr, callback_url, pos, _drive):
        await pos.create_task(location_id=STORE, task=assemble_task(callback_url, "TM-3"))
        (event,) = await orkestr.wait_for(1)
        lines = {ln.sku: ln for ln in event.lines}
        codes = lines[MARKED.sku].marking_codes
        assert len(codes) == 2 and len({parse_marking_code(c).identity for c in codes}) == 2
        assert all(parse_marking_code(c).gtin == gtin_from_barcode(MARKED.barcode) and parse_marking_code(c).full for c in codes)
        assert lines[PLAIN.sku].marking_codes == ()
