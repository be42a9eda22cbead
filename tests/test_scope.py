"""The question sets the scope: named places, environment words, siblings, and the namespaces work flows through."""

from __future__ import annotations

from agent.drafts import VerdictDraft
from agent.scope import EVERYTHING, conversation_scope, scope_of
from agent.validator import validate


def test_an_environment_word_scopes_to_it_and_rules_out_the_sibling() -> None:
    scope = scope_of("Anything in production I should worry about on payments?",
                     ["payments-prod", "payments-staging", "messaging"],
                     consumers=[("payments-staging", "settlement.staging"), ("payments-prod", "settlement.prod")],
                     shared=["messaging"])
    assert (scope.everything, sorted(scope.namespaces), sorted(scope.excluded)) == (
        False, ["messaging", "payments-prod"], ["payments-staging"])


def test_a_tenant_named_rules_out_the_other_tenant_even_through_shared_workload_names() -> None:
    scope = scope_of("Can you confirm Acme's report exports are working?", ["tenant-acme", "tenant-globex", "mq"],
                     workloads=[("tenant-globex", "export-worker"), ("tenant-acme", "export-worker")])
    assert (sorted(scope.namespaces), sorted(scope.excluded)) == (["tenant-acme"], ["tenant-globex"])


def test_a_question_naming_nothing_scopes_to_everything() -> None:
    scope = scope_of("Customers can't complete bookings. What's happening?", ["reservations", "billing"],
                     workloads=[("reservations", "inventory-svc")])
    assert scope == EVERYTHING and scope.covers("billing")


def test_a_named_workload_scopes_to_its_namespace_and_the_consumers_of_its_queues() -> None:
    scope = scope_of("statement-api requests pile up", ["ledger", "batch", "search"],
                     workloads=[("ledger", "statement-api"), ("search", "indexer")],
                     consumers=[("batch", "statements.render"), ("search", "reindex")])
    assert sorted(scope.namespaces) == ["batch", "ledger"]


def test_follow_ups_keep_the_scope_until_one_names_another_place() -> None:
    results = [("list_namespaces", {}, {"namespaces": [{"namespace": "shop-prod"}, {"namespace": "shop-staging"}]})]
    assert sorted(conversation_scope(["is prod ok?", "show me the queue"], results).namespaces) == ["shop-prod"]
    assert sorted(conversation_scope(["is prod ok?", "now look at staging"], results).namespaces) == ["shop-staging"]


def test_the_validator_never_answers_or_remediates_outside_the_scope() -> None:
    draft = VerdictDraft.model_validate({
        "status": "incident", "summary": "staging worker at 0", "confidence": 0.9,
        "root_cause": {"category": "consumer_unavailable", "explanation": "x",
                       "component": {"kind": "Deployment", "namespace": "shop-staging", "name": "worker"}},
        "remediation": {"action": "scale", "namespace": "shop-staging", "name": "worker", "replicas": 1}})
    scope = scope_of("is prod ok?", ["shop-prod", "shop-staging"])
    verdict, notes = validate(draft, [], scope)
    assert (verdict.status, verdict.remediation, verdict.root_cause) == ("inconclusive", None, None)
    assert verdict.also_noticed == ["staging worker at 0 []"]
    assert notes[0].startswith("dropped remediation on shop-staging/worker: outside the question's scope")


def test_a_workload_named_as_a_component_focuses_the_answer_an_ordinary_word_does_not() -> None:
    workloads = [("shop", "orders"), ("shop", "payment"), ("shop", "queue-master")]
    assert scope_of("Orders go through but nothing ships", ["shop"], workloads).focus == frozenset()
    assert scope_of("is the payment page slow?", ["shop"], workloads).focus == {("shop", "payment")}
    assert scope_of("is queue-master ok?", ["shop"], workloads).focus == {("shop", "queue-master")}
    assert not scope_of("is the payment page slow?", ["shop"], workloads).covers_workload("shop", "queue-master")


def test_named_workloads_are_ordered_by_how_plainly_the_question_names_them() -> None:
    from agent.scope import scope_of

    question = "Why did the push notification workers shrink from six pods to two?"
    refs = [("notify", "notify-broker"), ("notify", "push-sender"), ("notify", "notify-api")]
    orders = {scope_of(question, ["notify"], order).named for order in (refs, refs[::-1], refs[1:] + refs[:1])}
    assert orders == {("notify", "notify/push-sender", "notify/notify-api", "notify/notify-broker")}, (
        "'push' is said; 'notify' only by the prefix of 'notification'; the order never depends on set order")


def test_what_the_asker_states_is_fine_is_context_not_the_place_to_look() -> None:
    spaces, workloads = ["alerts", "ingest", "mq"], [("alerts", "pager-relay"), ("ingest", "feed-parser")]
    cleared = [
        "Nobody got paged overnight. The pager relay looks totally fine to me (3/3, no errors). What broke?",
        "Feeds stopped updating; pager-relay is healthy, I checked.",
        "pager-relay seems OK — so why does nobody get paged?",
    ]
    for question in cleared:
        assert scope_of(question, spaces, workloads).everything, question
    asked = ["Is the pager relay fine?", "Is pager-relay fine, or is it slow?", "The pager relay does not look fine.",
             "pager-relay is slow, is it ok?"]
    for question in asked:
        assert not scope_of(question, spaces, workloads).everything, question
    partly = scope_of("The pager relay looks fine, but feed-parser keeps lagging.", spaces, workloads)
    assert sorted(partly.namespaces) == ["ingest"]
