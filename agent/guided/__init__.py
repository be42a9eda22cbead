"""Guided mode: how the graph makes a small model succeed without changing what a strong model may do.

Instead of free-form tool calls, each turn is one JSON-schema-constrained choice (decoded under a grammar by the
server): a tool and arguments whose values are enumerated from what earlier calls discovered (namespaces,
deployments, queues). Code turns the choice into the real tool call, results are compacted, and the verdict is a
compact constrained draft that code expands into evidence citing the calls, with the numbers copied from them.
The validator then checks it like any other verdict.

Modules: `inventory` (what the calls discovered, the leads code follows, what is unchecked), `steps`
(the step schema, its tool calls, the compact transcript), `verdicts` (the verdict schema and its expansion).
"""
