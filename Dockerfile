# Orkestr: one image for the api, the worker, the sandbox and the migrations
# (docker-compose.yml chooses the command). Configured through ORKESTR_* variables (or secret files in
# ORKESTR_SECRETS_DIR). The image holds the installed wheel only: no source tree, no embedded runtime
# (the `[embedded]` extra: dev Temporal binary, embedded PostgreSQL) — it talks to a Temporal cluster
# and a PostgreSQL server, and its migrations ship inside the package (`orkestr migrate`).

# --- build: the wheel ---------------------------------------------------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . /src
RUN pip wheel --no-deps --wheel-dir /wheels /src

# --- run: the wheel and its dependencies ----------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin orkestr

COPY --from=build /wheels /wheels
RUN pip install /wheels/orkestr-*.whl && rm -rf /wheels

USER orkestr
WORKDIR /home/orkestr
ENV ORKESTR_DATA_DIR=/home/orkestr/.orkestr

EXPOSE 8000 8100 9464
CMD ["orkestr", "api"]
