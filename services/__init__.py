"""The service layer: what Orkestr does for its callers, in business terms.

``api/`` routes (and the console, later) translate HTTP to these calls and back; the services check
what the routes cannot express in a schema (a SKU in the catalog, a store that hands out orders,
what may be returned), talk to Temporal (start, update, query the workflows) and read the
repositories. They raise the plain exceptions of :mod:`services.errors`, which the API maps to
HTTP statuses. No FastAPI here.
"""
