"""Shapes crossing the workflow boundary: workflow inputs and results, activity requests and answers,
signals and updates. Frozen dataclasses with a default on every field added later, so running
workflows keep decoding their history.
"""
