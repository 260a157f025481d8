"""Store POS steps: tasks for the staff (assemble, set aside, put back, receive a return), reminders."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.common import logger, refusals_as
from adapters.pos import PosClient
from adapters.wire.pos import PosLine, PosTask, PosTaskKind
from contracts.steps import ErrorType, PosCancel, PosTaskRequest, StoreMessage


@dataclass
class PosActivities:
    pos: PosClient
    callback_url: str

    @activity.defn
    async def create_pos_task(self, req: PosTaskRequest) -> None:
        task = PosTask(
            task_id=req.task_id, kind=PosTaskKind(req.kind), order_id=req.order_id, order_number=req.order_id,
            lines=tuple(PosLine(sku=l.sku, name=req.names.get(l.sku, l.sku), qty=l.qty) for l in req.lines),
            due_at=req.due_at, callback_url=self.callback_url, customer_name=req.customer_name,
            phone_masked=req.phone_masked, note=req.note,
        )
        with refusals_as(ErrorType.POS_REFUSED):
            await self.pos.create_task(location_id=req.location_id, task=task)
        logger().info("pos.task_created", task_id=req.task_id, location=req.location_id, kind=req.kind)

    @activity.defn
    async def cancel_pos_task(self, req: PosCancel) -> None:
        with refusals_as(ErrorType.POS_REFUSED):
            await self.pos.cancel_task(location_id=req.location_id, task_id=req.task_id, reason=req.reason)

    @activity.defn
    async def notify_store(self, msg: StoreMessage) -> None:
        with refusals_as(ErrorType.POS_REFUSED):
            await self.pos.notify(location_id=msg.location_id, message_id=msg.message_id, text=msg.text, task_id=msg.task_id)
