"""FIFO tokens: same bytes as the TypeScript adapter (sha256 over TextEncoder UTF-8, base64url)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.errors import RunlaneError
from runlane.infrastructure.sqs import fifo_token


@pytest.mark.parametrize(
    ("parts", "token"),
    [
        (["run", "production", "run_123"], "runlane_gllIUQbnBWE4jqhnaR67_KFl6GrN2y9N3gaDLGhRp6E"),
        (["queue", "production", "emails"], "runlane_Rk7e_Sqpxo7srwjklcsU0U5r-7Pq6wUziFnP4rnI7eo"),
        (["outbox", "outbox_1"], "runlane_3wLXkFDKHmuqMzk5HJ6M0q7ab23OzpMbET3rzuPw5p4"),
    ],
)
def test_spec_vectors(parts: list[str], token: str) -> None:
    assert fifo_token(parts) == token


@pytest.mark.parametrize(
    ("parts", "token"),
    [
        # Node: 'runlane_' + sha256(new TextEncoder().encode(parts.join('\0'))).digest('base64url')
        (["run", "prod", "run_\ud800x"], "runlane_S27VbKaqC8m6Rr2_lInAUIUEV-hwmPOHth1-KgcRoo8"),
        (["run", "prod", "run_\ud83d\ude00"], "runlane_B0idjrbvNgyb3j-7xTEV-7sPsGxayvlI5OzjxnpW0h8"),
        (["run", "prod", "run_\U0001f600"], "runlane_B0idjrbvNgyb3j-7xTEV-7sPsGxayvlI5OzjxnpW0h8"),
        (["queue", "prod", "emails\udc00"], "runlane_t6PNBiOT6E093pDGCKzkGVe_RrRFyvJjDD-IUNrZXk0"),
        (["run", "prod", "r\u00e9sum\u00e9_\u4e2d"], "runlane_ruLyguHdGqp_tCFjBP3zkmNz_ZJdD6joNWtUSUUXmCQ"),
    ],
)
def test_node_vectors_for_non_ascii_and_lone_surrogates(parts: list[str], token: str) -> None:
    assert fifo_token(parts) == token


def test_lone_surrogates_hash_like_u_fffd() -> None:
    assert fifo_token(["a\ud800"]) == fifo_token(["a\ufffd"])


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_tokens_fit_sqs_id_rules(parts: list[str]) -> None:
    token = fifo_token(parts)
    assert re.fullmatch(r"runlane_[A-Za-z0-9_-]{43}", token)


def test_parts_must_be_strings() -> None:
    with pytest.raises(RunlaneError):
        fifo_token(["run", 1])  # type: ignore[list-item]
    with pytest.raises(RunlaneError):
        fifo_token("run")
