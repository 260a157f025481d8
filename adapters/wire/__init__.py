"""Wire shapes of the outside systems, beside their adapters (and the sandbox that imitates them)."""
