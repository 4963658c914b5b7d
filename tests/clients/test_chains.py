"""Per-key chains, the rule ``send_many`` and ``alertwire send`` share (pure logic).

The senders' own tests (tests/clients, tests/cli) pin the rule over real HTTP;
these pin the two pieces on their own: the grouping and the walk.
"""

from __future__ import annotations

from threading import Event

from alertwire import HeldBack, NetworkError
from alertwire._chains import chains, send_chain
from alertwire._errors import DeliveryError


def test_items_of_one_key_share_a_chain_in_input_order_keys_in_order_of_first_use() -> None:
    items = ["b1", "a1", "b2", "c1", "a2", "b3"]
    assert chains(items, lambda item: item[0]) == [[0, 2, 5], [1, 4], [3]]


def test_an_item_without_a_key_is_a_chain_of_its_own() -> None:
    items = [None, "k", None, "k"]
    assert chains(items, lambda item: item) == [[0], [1, 3], [2]]


def test_no_items_no_chains() -> None:
    assert chains([], lambda item: item) == []


def _walk(
    results: dict[int, str | DeliveryError | None], stop: Event | None = None
) -> tuple[list[int], dict[int, str | DeliveryError]]:
    sent: list[int] = []
    recorded: dict[int, str | DeliveryError] = {}

    def send(index: int) -> str | DeliveryError | None:
        sent.append(index)
        return results[index]

    def record(index: int, outcome: str | DeliveryError) -> None:
        recorded[index] = outcome

    def hold(failed: int, failure: DeliveryError) -> str | DeliveryError:
        return HeldBack(failure, earlier=f"item {failed}")

    send_chain(list(results), send, record, hold=hold, stop=stop)
    return sent, recorded


def test_after_a_failure_the_rest_of_the_chain_is_held_back_not_sent() -> None:
    failure = NetworkError("refused")
    sent, recorded = _walk({3: "ok", 5: failure, 8: "never", 9: "never"})
    assert sent == [3, 5]
    assert recorded[3] == "ok" and recorded[5] is failure
    for index in (8, 9):
        held = recorded[index]
        assert isinstance(held, HeldBack) and held.failure is failure
        assert "item 5" in str(held) and held.retryable and held.attempts == 0


def test_a_send_cut_short_ends_the_chain_with_nothing_recorded_for_it() -> None:
    sent, recorded = _walk({0: "ok", 1: None, 2: "never"})
    assert sent == [0, 1] and recorded == {0: "ok"}


def test_once_stop_is_set_nothing_more_is_sent_or_held() -> None:
    stop = Event()
    stop.set()
    assert _walk({0: NetworkError("x"), 1: "never"}, stop) == ([], {})
