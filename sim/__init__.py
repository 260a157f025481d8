"""The chain simulator: how many online orders stores cannot assemble, under which policy.

``sim.engine`` is the fast in-process driver (no Temporal) over the real rules in ``domain/``;
``sim.world`` the chain, the behaviour of the world around Orkestr and the six configurations;
``sim.report`` the table, JSON and chart; ``sim.replay`` the what-if of a draft rule set on real
orders from the order projection. ``orkestr simulate`` (``make simulate``) runs it.
"""
