"""An order's story for a person, built from Temporal event histories (pure: no I/O, no SDK).

Input: the histories of the order workflow and its fulfillment children as Temporal's JSON
(``WorkflowHistory.to_json()`` / ``temporal workflow show --output json``: ``{"events": [...]}``)
plus the order's own timeline (the ``OrderSnapshot`` from the projection). Output: a ``Story`` —
each step (activity, local activity, child workflow, timer, message received) with when, how long,
how many attempts, what the outside system answered and why it failed; and the operator decisions
(updates: who, what, the outcome).

``mask_story`` hides the customer's personal data (phone, name, e-mail, address) everywhere in the
story, for the support role.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

#: steps whose answers are bulky or internal: shown without their result
QUIET_RESULTS = {"load_stock_view", "save_order", "reserve_stock", "release_stock", "consume_stock",
                 "notify_customer", "price_cart", "begin_loyalty"}
#: answer fields worth showing (identifiers and outcomes the outside systems gave us)
ANSWER_KEYS = ("md_order", "form_url", "order_status", "approved", "tracking_number", "external_id", "carrier",
               "task_id", "request_id", "status", "code", "rows", "version", "delivered", "cancelled",
               "shipment_id", "bonus_to_accrue", "subtotal", "discount", "bonus_spent")
#: signals that carry news from outside (everything else is internal plumbing, still listed)
SIGNAL_SOURCES = {"payment_event": "acquiring (callback)", "pos_event": "store POS", "courier_event": "courier",
                  "shipment_update": "fulfillment", "step_parked": "fulfillment", "cancel": "order", "retry": "order"}


@dataclass(frozen=True)
class Step:
    workflow_id: str
    kind: str  # activity | local_activity | child_workflow | timer | signal
    name: str
    started_at: datetime | None
    finished_at: datetime | None = None
    outcome: str = "running"  # ok | failed | timed_out | cancelled | running | fired | received
    attempts: int = 1
    answer: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    retried_because: str | None = None  # the last failure before the attempt that counted
    source: str | None = None  # who sent a signal
    event_id: int = 0

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


@dataclass(frozen=True)
class Decision:
    """An operator's (or the storefront's) request through an update: who asked what, and the answer."""

    workflow_id: str
    at: datetime | None
    name: str
    by: str
    request: dict[str, Any] = field(default_factory=dict)
    outcome: str = "pending"  # accepted | failed | pending
    answer: str | None = None
    event_id: int = 0


@dataclass(frozen=True)
class WorkflowRun:
    workflow_id: str
    workflow_type: str
    run_id: str | None
    started_at: datetime | None
    closed_at: datetime | None
    status: str  # running | completed | failed | ...
    failure: str | None = None


@dataclass(frozen=True)
class Story:
    order_id: str
    order_status: str | None
    workflows: list[WorkflowRun]
    steps: list[Step]
    decisions: list[Decision]
    timeline: list[dict[str, Any]]
    customer: dict[str, Any] = field(default_factory=dict)
    delivery: dict[str, Any] = field(default_factory=dict)
    masked: bool = False


# ------------------------------------------------------------------------------------------ decoding
def event_type(event: dict[str, Any]) -> str:
    """``EVENT_TYPE_ACTIVITY_TASK_SCHEDULED`` or ``ActivityTaskScheduled`` -> ``ActivityTaskScheduled``."""
    raw = str(event.get("eventType", ""))
    if raw.startswith("EVENT_TYPE_"):
        return "".join(part.capitalize() for part in raw[len("EVENT_TYPE_"):].split("_"))
    return raw


def attributes(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventAttributes") and isinstance(value, dict):
            return value
    return {}


def decode_payload(payload: dict[str, Any] | None) -> Any:
    """A JSON payload's value; ``None`` for a null/absent one; a marker for binary ones."""
    if not payload:
        return None
    meta = payload.get("metadata", {})
    encoding = base64.b64decode(meta.get("encoding", "")).decode(errors="replace") if meta.get("encoding") else ""
    data = base64.b64decode(payload.get("data", "")) if payload.get("data") else b""
    if encoding == "binary/null":
        return None
    if encoding.startswith("json/"):
        try:
            return json.loads(data or b"null")
        except ValueError:
            return "<undecodable>"
    return f"<{encoding or 'binary'} payload>"


def decode_payloads(container: dict[str, Any] | None) -> list[Any]:
    if not container:
        return []
    return [decode_payload(p) for p in container.get("payloads", [])]


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, dict):  # {"seconds": ..., "nanos": ...}
        from datetime import timezone

        return datetime.fromtimestamp(int(value.get("seconds", 0)) + int(value.get("nanos", 0)) / 1e9, tz=timezone.utc)
    text = str(value).replace("Z", "+00:00")
    text = re.sub(r"\.(\d{6})\d+", r".\1", text)  # nanoseconds -> microseconds
    return datetime.fromisoformat(text)


def failure_text(failure: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(message, type) of a failure, descending to the root cause's message when the top is generic."""
    if not failure:
        return None, None
    message = failure.get("message")
    kind = (failure.get("applicationFailureInfo") or {}).get("type")
    cause = failure.get("cause")
    while cause:
        kind = kind or (cause.get("applicationFailureInfo") or {}).get("type")
        if cause.get("message"):
            message = cause["message"] if not message or message.startswith("Activity task failed") else message
        cause = cause.get("cause")
    if "timeoutFailureInfo" in failure:
        kind = kind or f"timeout:{failure['timeoutFailureInfo'].get('timeoutType', '')}"
    return message, kind


def summarize(value: Any) -> dict[str, Any]:
    """The identifiers and outcomes in an answer (not the whole payload)."""
    if isinstance(value, dict):
        out = {k: value[k] for k in ANSWER_KEYS if k in value and _scalar(value[k]) and value[k] not in (None, "")}
        for k, v in value.items():  # nested booking etc.
            if isinstance(v, dict) and k in ("booking",):
                out.update({f"{k}.{kk}": vv for kk, vv in summarize(v).items()})
        return out
    if _scalar(value) and value is not None:
        return {"value": value}
    return {}


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


# ------------------------------------------------------------------------------------------ building
def read_history(workflow_id: str, history: dict[str, Any]) -> tuple[WorkflowRun, list[Step], list[Decision]]:
    """Steps and decisions of one workflow's history (JSON as Temporal writes it)."""
    events = history.get("events", [])
    steps: dict[int, Step] = {}
    decisions: dict[str, Decision] = {}
    run = WorkflowRun(workflow_id=workflow_id, workflow_type="?", run_id=None, started_at=None, closed_at=None,
                      status="running")
    for e in events:
        kind, a, eid, at = event_type(e), attributes(e), int(e.get("eventId", 0)), parse_time(e.get("eventTime"))
        if kind == "WorkflowExecutionStarted":
            run = dataclasses.replace(run, workflow_type=a.get("workflowType", {}).get("name", "?"),
                                      run_id=a.get("originalExecutionRunId") or a.get("firstExecutionRunId"),
                                      started_at=at)
        elif kind.startswith("WorkflowExecution") and kind[len("WorkflowExecution"):] in (
                "Completed", "Failed", "TimedOut", "Terminated", "Canceled", "ContinuedAsNew"):
            status = kind[len("WorkflowExecution"):].lower()
            message, _ = failure_text(a.get("failure")) if status == "failed" else (a.get("reason"), None)
            run = dataclasses.replace(run, closed_at=at, status=status, failure=message)
        elif kind == "ActivityTaskScheduled":
            steps[eid] = Step(workflow_id=workflow_id, kind="activity", name=a.get("activityType", {}).get("name", "?"),
                              started_at=at, event_id=eid)
        elif kind == "ActivityTaskStarted":
            sid = int(a.get("scheduledEventId", 0))
            if sid in steps:
                last, _ = failure_text(a.get("lastFailure"))
                steps[sid] = dataclasses.replace(steps[sid], attempts=int(a.get("attempt", 1)), retried_because=last)
        elif kind in ("ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskTimedOut", "ActivityTaskCanceled"):
            sid = int(a.get("scheduledEventId", 0))
            if sid not in steps:
                continue
            step = steps[sid]
            if kind == "ActivityTaskCompleted":
                result = decode_payloads(a.get("result"))
                answer = {} if step.name in QUIET_RESULTS else summarize(result[0] if result else None)
                steps[sid] = dataclasses.replace(step, finished_at=at, outcome="ok", answer=answer)
            else:
                message, etype = failure_text(a.get("failure"))
                outcome = {"ActivityTaskFailed": "failed", "ActivityTaskTimedOut": "timed_out"}.get(kind, "cancelled")
                steps[sid] = dataclasses.replace(step, finished_at=at, outcome=outcome, error=message, error_type=etype)
        elif kind == "MarkerRecorded" and a.get("markerName") == "core_local_activity":
            details = a.get("details", {})
            data = (decode_payloads(details.get("data")) or [{}])[0] or {}
            name = data.get("activity_type", "?")
            started = parse_time(data.get("original_schedule_time")) or at
            result = decode_payloads(details.get("result"))
            message, etype = failure_text(a.get("failure"))
            finished = parse_time(data.get("complete_time")) or at
            if started and finished and finished < started:  # clocks of the worker and the schedule differ
                started, finished = at, None
            steps[eid] = Step(workflow_id=workflow_id, kind="local_activity", name=name, started_at=started,
                              finished_at=finished,
                              outcome="failed" if message else "ok", attempts=int(data.get("attempt", 1)),
                              answer={} if name in QUIET_RESULTS or message else summarize(result[0] if result else None),
                              error=message, error_type=etype, event_id=eid)
        elif kind == "StartChildWorkflowExecutionInitiated":
            steps[eid] = Step(workflow_id=workflow_id, kind="child_workflow",
                              name=f"{a.get('workflowType', {}).get('name', '?')} {a.get('workflowId', '')}".strip(),
                              started_at=at, event_id=eid)
        elif kind.startswith("ChildWorkflowExecution") and kind != "ChildWorkflowExecutionStarted":
            sid = int(a.get("initiatedEventId", 0))
            if sid in steps:
                status = kind[len("ChildWorkflowExecution"):]
                result = decode_payloads(a.get("result"))
                message, etype = failure_text(a.get("failure"))
                steps[sid] = dataclasses.replace(
                    steps[sid], finished_at=at, outcome="ok" if status == "Completed" else status.lower(),
                    answer=summarize(result[0] if result else None), error=message, error_type=etype)
        elif kind == "TimerStarted":
            steps[eid] = Step(workflow_id=workflow_id, kind="timer", name=f"wait {_human(a.get('startToFireTimeout'))}",
                              started_at=at, event_id=eid)
            steps[eid] = dataclasses.replace(steps[eid], answer={"timer_id": a.get("timerId")})
        elif kind in ("TimerFired", "TimerCanceled"):
            timer_id = a.get("timerId")
            for sid, s in steps.items():
                if s.kind == "timer" and s.answer.get("timer_id") == timer_id and s.outcome == "running":
                    steps[sid] = dataclasses.replace(s, finished_at=at, outcome="fired" if kind == "TimerFired"
                                                     else "ended early", answer={})
                    break
        elif kind == "WorkflowExecutionSignaled":
            name = a.get("signalName", "?")
            args = decode_payloads(a.get("input"))
            steps[eid] = Step(workflow_id=workflow_id, kind="signal", name=name, started_at=at, finished_at=at,
                              outcome="received", answer=summarize(args[0] if args else None) | _signal_detail(args),
                              source=SIGNAL_SOURCES.get(name, a.get("identity") or None), event_id=eid)
        elif kind == "WorkflowExecutionUpdateAccepted":
            req = a.get("acceptedRequest", {})
            meta, inp = req.get("meta", {}), req.get("input", {})
            args = decode_payloads(inp.get("args"))
            first = args[0] if args and isinstance(args[0], dict) else {}
            decisions[meta.get("updateId", str(eid))] = Decision(
                workflow_id=workflow_id, at=at, name=inp.get("name", "?"),
                by=str(first.get("by") or meta.get("identity") or "?"),
                request={k: v for k, v in first.items() if _scalar(v)}, outcome="accepted", event_id=eid)
        elif kind == "WorkflowExecutionUpdateCompleted":
            uid = a.get("meta", {}).get("updateId")
            if uid in decisions:
                outcome = a.get("outcome", {})
                if "failure" in outcome:
                    message, _ = failure_text(outcome["failure"])
                    decisions[uid] = dataclasses.replace(decisions[uid], outcome="failed", answer=message)
                else:
                    value = (decode_payloads(outcome.get("success")) or [None])[0]
                    decisions[uid] = dataclasses.replace(decisions[uid], answer=_short(value))
    return run, list(steps.values()), list(decisions.values())


def _human(duration: Any) -> str:
    """``"300s"`` -> ``"5 min"``."""
    try:
        seconds = float(str(duration).rstrip("s"))
    except ValueError:
        return str(duration)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _signal_detail(args: list[Any]) -> dict[str, Any]:
    if not args or not isinstance(args[0], dict):
        return {}
    a = args[0]
    out = {k: a[k] for k in ("operation", "success", "event", "message", "by", "step") if k in a and _scalar(a[k])}
    return out


def _short(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in summarize(value).items() or value.items() if _scalar(v))[:300]
    return str(value)[:300]


def build_story(order_id: str, histories: dict[str, dict[str, Any]], snapshot: dict[str, Any] | None) -> Story:
    """The story of an order from its workflows' histories (workflow id -> history JSON) and its snapshot."""
    runs, steps, decisions = [], [], []
    for wf_id, history in histories.items():
        run, s, d = read_history(wf_id, history)
        runs.append(run)
        steps += s
        decisions += d
    far = datetime.max.replace(tzinfo=None)

    def key(x: Any) -> Any:
        t = x.started_at if isinstance(x, Step) else x.at
        return (t.replace(tzinfo=None) if t else far, x.workflow_id, x.event_id)

    snap = snapshot or {}
    return Story(
        order_id=order_id, order_status=snap.get("status"), workflows=runs, steps=sorted(steps, key=key),
        decisions=sorted(decisions, key=key), timeline=list(snap.get("timeline", [])),
        customer=dict(snap.get("customer") or {}), delivery=dict(snap.get("delivery") or {}),
    )


# ------------------------------------------------------------------------------------------ masking
def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"+{digits[:1]}***{digits[-4:]}" if len(digits) >= 5 else "***"


def mask_name(name: str) -> str:
    return " ".join(f"{w[0]}***" for w in name.split() if w) or "***"


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_story(story: Story) -> Story:
    """The support role's view: the customer's phone, name, e-mail and street address are masked
    in the customer block *and* wherever they appear in the story (answers, errors, timeline)."""
    customer = dict(story.customer)
    delivery = json.loads(json.dumps(story.delivery, default=str))
    replacements: dict[str, str] = {}
    if customer.get("phone"):
        phone = str(customer["phone"])
        masked = mask_phone(phone)
        replacements[phone] = masked
        digits = "".join(ch for ch in phone if ch.isdigit())
        if len(digits) >= 10:
            replacements[digits] = masked
            replacements[digits[-10:]] = masked
        customer["phone"] = masked
    if customer.get("name"):
        replacements[str(customer["name"])] = mask_name(str(customer["name"]))
        for part in str(customer["name"]).split():
            if len(part) >= 3:
                replacements[part] = mask_name(part)
        customer["name"] = mask_name(str(customer["name"]))
    if customer.get("email"):
        replacements[str(customer["email"])] = mask_email(str(customer["email"]))
        customer["email"] = mask_email(str(customer["email"]))
    address = delivery.get("address")
    if isinstance(address, dict):
        for k in ("line", "postcode"):
            if address.get(k):
                replacements[str(address[k])] = "***"
                address[k] = "***"

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for raw in sorted(replacements, key=len, reverse=True):
                if raw and raw in value:
                    value = value.replace(raw, replacements[raw])
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(value, **{f.name: scrub(getattr(value, f.name))
                                                 for f in dataclasses.fields(value)})
        return value

    return Story(order_id=story.order_id, order_status=story.order_status, workflows=scrub(story.workflows),
                 steps=scrub(story.steps), decisions=scrub(story.decisions), timeline=scrub(story.timeline),
                 customer=customer, delivery=delivery, masked=True)


def story_to_json(story: Story) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, Step):
            return {**{f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}, "duration_s": v.duration_s}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    out: dict[str, Any] = conv(story)
    return out


def child_workflow_ids(history: dict[str, Any]) -> list[str]:
    """The children an order started (from its ``StartChildWorkflowExecutionInitiated`` events)."""
    out = []
    for e in history.get("events", []):
        if event_type(e) == "StartChildWorkflowExecutionInitiated":
            wf_id = attributes(e).get("workflowId")
            if wf_id and wf_id not in out:
                out.append(wf_id)
    return out


def workflow_task_boundaries(history: dict[str, Any]) -> list[int]:
    """Indexes just after each ``WorkflowTaskStarted`` event (prefixes the replayer can check)."""
    return [i + 1 for i, e in enumerate(history.get("events", [])) if event_type(e) == "WorkflowTaskStarted"]


def first_command_event_after(history: dict[str, Any], index: int) -> dict[str, Any] | None:
    """The first event a workflow's commands produced after position ``index`` (where replay diverged)."""
    skip = {"WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted", "WorkflowTaskFailed",
            "WorkflowTaskTimedOut", "WorkflowExecutionSignaled", "WorkflowExecutionUpdateAccepted",
            "ActivityTaskStarted", "ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskTimedOut",
            "TimerFired", "ChildWorkflowExecutionStarted", "ChildWorkflowExecutionCompleted",
            "ChildWorkflowExecutionFailed", "ExternalWorkflowExecutionSignaled"}
    events: list[dict[str, Any]] = history.get("events", [])
    return next((e for e in events[index:] if event_type(e) not in skip), None)


def describe_event(event: dict[str, Any] | None) -> str:
    if event is None:
        return "the end of the history"
    a = attributes(event)
    name = (a.get("activityType") or a.get("workflowType") or {}).get("name") or a.get("markerName") \
        or a.get("signalName") or a.get("timerId")
    detail = ""
    if a.get("markerName") == "core_local_activity":
        data = (decode_payloads(a.get("details", {}).get("data")) or [{}])[0] or {}
        detail = f" (local activity {data.get('activity_type')})"
    return f"event {event.get('eventId')} {event_type(event)}{' ' + str(name) if name else ''}{detail}"


def iter_strings(value: Any) -> Iterable[str]:
    """Every string in a JSON-like value (tests check masking with it)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_strings(v)
