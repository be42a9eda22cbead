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


def test_an_acceptance_environment_is_not_production() -> None:
    scope = scope_of("are we dropping meter reads on the prod rabbit?", ["metering", "metering-acc", "amqp"],
                     shared=["amqp"])
    assert sorted(scope.excluded) == ["metering-acc"] and "metering" in scope.namespaces


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


def test_a_region_written_in_capitals_rules_out_the_other_region() -> None:
    scope = scope_of("Before the sale: is the EU order pipeline healthy? Ping us if not.",
                     ["orders-eu", "orders-us", "mq"], shared=["mq"])
    assert (sorted(scope.namespaces), sorted(scope.excluded)) == (["mq", "orders-eu"], ["orders-us"])
    lowercase = scope_of("can you tell us why orders are slow?", ["orders-eu", "orders-us"])
    assert lowercase.excluded == frozenset(), "'us' in a sentence is a pronoun, not a region"


def test_two_namespaces_named_by_a_common_word_are_told_apart_by_their_own() -> None:
    scope = scope_of("I'm on call for checkout-apac tonight; is anything broken?",
                     ["checkout-apac", "checkout-latam", "mq"], shared=["mq"])
    assert (sorted(scope.namespaces), sorted(scope.excluded)) == (["checkout-apac", "mq"], ["checkout-latam"])
    short = scope_of("I'm on call for fleet-de tonight; anything broken?", ["fleet-de", "fleet-fr"])
    assert (sorted(short.namespaces), sorted(short.excluded)) == (["fleet-de"], ["fleet-fr"])


def test_a_modifier_word_alone_names_a_workload_but_does_not_narrow_the_search() -> None:
    """'Sensor dashboards froze' mentions sensor-gateway, but the incident may be anywhere on the data's path."""
    spaces = ["edge", "storage"]
    workloads = [("edge", "sensor-gateway"), ("storage", "reading-writer")]
    vague = scope_of("Sensor dashboards froze half an hour ago. What's up?", spaces, workloads)
    assert vague.everything and "edge/sensor-gateway" in vague.named
    head = scope_of("Is the gateway dropping readings?", spaces, workloads)
    assert (head.everything, sorted(head.namespaces)) == (False, ["edge"])


def test_the_scope_follows_callers_errors_to_a_dependency_in_another_namespace() -> None:
    from agent.scope import scope_from_results

    line = {"service": "route-planner", "status": "error",
            "message": 'Get "http://geocoder.geo.svc.cluster.local:8080/v2": dial tcp: connect: connection refused'}
    results = [
        ("list_namespaces", {}, {"namespaces": [{"namespace": n} for n in ("dispatch", "geo", "billing")]}),
        ("get_deployment", {"namespace": "dispatch"}, {"namespace": "dispatch", "deployments": [
            {"name": "route-planner", "desired": 3, "available": 3}]}),
        ("get_deployment", {"namespace": "geo"}, {"namespace": "geo", "deployments": [
            {"name": "geocoder", "desired": 0, "available": 0}]}),
        ("search_logs", {"query": "kube_namespace:dispatch status:error"}, {"total": 40, "samples": [line]}),
    ]
    scope = scope_from_results("The dispatch console says it couldn't plan a route. What broke?", results)
    assert sorted(scope.namespaces) == ["dispatch", "geo"]


def test_a_queue_without_consumers_links_to_the_workload_at_zero_named_like_it() -> None:
    from agent.scope import scope_from_results

    results = [
        ("list_namespaces", {}, {"namespaces": [{"namespace": n} for n in ("invoicing", "render", "search")]}),
        ("get_deployment", {"namespace": "invoicing"}, {"namespace": "invoicing", "deployments": [
            {"name": "invoice-api", "desired": 2, "available": 2}]}),
        ("get_deployment", {"namespace": "render"}, {"namespace": "render", "deployments": [
            {"name": "invoice-renderer", "desired": 0, "available": 0}]}),
        ("get_queue_stats", {"queue": "invoice.render"}, {"queue": "invoice.render", "messages": 90, "consumers": 0}),
    ]
    scope = scope_from_results("Invoices requested in the app never arrive. The invoice api looks busy.", results)
    assert sorted(scope.namespaces) == ["invoicing", "render"]


def test_a_short_name_said_in_the_plural_is_named() -> None:
    workloads = [("shop-nl", "cart-api"), ("shop-be", "cart-api")]
    scope = scope_of("are carts working for the NL stores?", ["shop-nl", "shop-be"], workloads=workloads)
    assert (sorted(scope.namespaces), sorted(scope.excluded)) == (["shop-nl"], ["shop-be"])
    assert scope_of("are carts working?", ["shop-nl", "shop-be"], workloads=workloads).named == (
        "shop-be/cart-api", "shop-nl/cart-api")
