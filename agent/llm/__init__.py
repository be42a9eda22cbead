"""Models behind one small protocol: OpenAI-compatible servers, the embedded local model, the deterministic
playbook baseline and a scripted model for tests."""
