# The sentinel processor / simulator image used by compose.yaml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sentinel ./sentinel
COPY ingest ./ingest
COPY rules ./rules
COPY alerts ./alerts
COPY simulators ./simulators
RUN pip install --no-cache-dir . && useradd --system --home /data sentinel && mkdir -p /data && chown sentinel /data
USER sentinel
WORKDIR /data
ENTRYPOINT ["sentinel"]
CMD ["--help"]
