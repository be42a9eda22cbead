"""The remediation core: typed actions under a policy, human approvals, execution, verification, audit.

Nothing here runs a shell or kubectl: changes are typed Kubernetes client calls (or moves of a replayed
world), made only by the executor, only for an approved, unexpired approval it has atomically claimed.
"""
