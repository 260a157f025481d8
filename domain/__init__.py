"""Pure business rules: money, sourcing, promise, refunds, planning, assignment, availability, pickup.

No I/O, no clock, no randomness: safe inside workflows and trivially unit-tested.
"""
