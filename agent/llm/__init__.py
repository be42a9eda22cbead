"""Models behind one small protocol: OpenAI-compatible servers, the embedded local model and a scripted model for
tests (the deterministic playbook baseline, which implements the same protocol, is `agent.baseline`)."""
