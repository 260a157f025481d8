"""Alembic migrations, shipped inside the installed package: ``orkestr migrate`` finds them with
importlib.resources, so a wheel install (the Docker image) migrates without the source tree."""
