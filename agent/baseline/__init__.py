"""The deterministic no-LLM baseline (`--model playbook`): `reading` (what the tool results show), `rules` (the
verdict drawn from them) and `policy` (the ChatModel that makes the calls and answers through the same graph)."""
