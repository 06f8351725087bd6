"""The shared ExecuteDeliveryOptions names must stay equal to ``Runlane.execute_delivery``'s keywords."""

import inspect

from runlane import Runlane
from runlane.ports.delivery_options import EXECUTE_DELIVERY_OPTIONS


def test_consumer_option_names_match_the_runtime_signature() -> None:
    parameters = inspect.signature(Runlane.execute_delivery).parameters.values()
    keywords = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == set(EXECUTE_DELIVERY_OPTIONS)
