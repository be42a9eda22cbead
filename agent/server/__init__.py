"""`sre-agent serve`: the HTTP front door (FastAPI). Investigations started by a request or an alert webhook, their
progress as server-sent events, approvals answered by authenticated approvers, health and Prometheus metrics.

Built by `agent.server.app.create_app(settings)`; endpoints and configuration in docs/serve.md.
"""
