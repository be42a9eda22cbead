"""`sre-agent watch`: sweeps for silent failures with no LLM; a new anomaly opens an investigation and notifies."""
