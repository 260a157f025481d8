# Orkestr: one image for the api, the worker, the sandbox and the migrations
# (docker-compose.yml chooses the command). Configured through ORKESTR_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin orkestr

WORKDIR /app
# the project (minus what .dockerignore leaves out); alembic.ini and migrations/ stay in /app,
# the working directory of every command
COPY . /app
RUN pip install /app

USER orkestr
ENV ORKESTR_DATA_DIR=/home/orkestr/.orkestr

EXPOSE 8000 8100
CMD ["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8000"]
