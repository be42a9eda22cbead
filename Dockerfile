# The sre-agent image: `serve` (the HTTP API) by default; the watcher runs the same image with `watch --live`.
# Build: docker build -t sre-agent:0.1.0 .   (the embedded model is not in the image: set OPENAI_* or use playbook)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY tools ./tools
COPY prompts ./prompts
COPY evals ./evals
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --create-home --home-dir /home/sre-agent sre-agent \
 && mkdir -p /data && chown sre-agent /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
USER 10001
ENV SRE_AGENT_DATA=/data \
    SRE_AGENT_SERVE_DATA=/data \
    PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["sre-agent"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--live"]
