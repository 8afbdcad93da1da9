"""Pricing modes, as pure functions over integer micro-credits (docs: helpers' pricing section).

A catalog model carries up to five prices (all micro-credits):
  price_in / price_out      per 1M input / output tokens (chat and text completions)
  price_embedding           per 1M input tokens of an embedding call (None: price_in is used)
  price_image               per image generated
  price_request             flat, per request, added to every operation's cost
A batch request (`?batch=1`) costs the whole amount times the batch multiplier (default 2).

Token classes (docs/billing.md "Token classes"): of the input tokens, those read from the
provider's prompt cache and those written to it, and of the output tokens, the reasoning tokens,
each have a price of their own when the model sets one (price_cached_in, price_cache_write,
price_reasoning), else the input price (cached, cache writes) or the output price (reasoning).
A hold prices its bound at the dearest price a token of that side may have.

The same function prices the hold (over the most a request may use) and the charge (over what
it used), so a hold covers the charge whenever usage stays within its bound. Rounding: one
ceiling per request for the token part and one for the batch multiplier, never down to free.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import parse_qs

from tollgate.common.errors import InvalidRequest

MICROS_PER_MILLION_TOKENS = 1_000_000
PERMILLE = 1000


class Operation(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"
    IMAGE = "image"


class PriceList(Protocol):
    """What the cost function reads from a model (a CatalogEntry satisfies it)."""

    @property
    def price_in_micros(self) -> int: ...
    @property
    def price_out_micros(self) -> int: ...
    @property
    def price_request_micros(self) -> int: ...
    @property
    def price_image_micros(self) -> int: ...
    @property
    def price_embedding_micros(self) -> int | None: ...
    @property
    def price_cached_in_micros(self) -> int | None: ...
    @property
    def price_cache_write_micros(self) -> int | None: ...
    @property
    def price_reasoning_micros(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Prices:
    price_in_micros: int = 0
    price_out_micros: int = 0
    price_request_micros: int = 0
    price_image_micros: int = 0
    price_embedding_micros: int | None = None
    price_cached_in_micros: int | None = None
    price_cache_write_micros: int | None = None
    price_reasoning_micros: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What a request used (or, for a hold, the most it may use). The token classes are parts of
    tokens_in (cached_in, cache_write) and of tokens_out (reasoning), as OpenAI reports them."""

    tokens_in: int = 0
    tokens_out: int = 0
    units: int = 0  # images generated; inputs embedded (informational: embeddings price tokens)
    cached_in: int = 0
    cache_write: int = 0
    reasoning: int = 0


@dataclass(frozen=True, slots=True)
class PricingPolicy:
    """Gateway-wide settings: GATEWAY_BATCH_MULTIPLIER and GATEWAY_DEFAULT_REQUEST_PRICE."""

    batch_multiplier_permille: int = 2 * PERMILLE
    default_request_micros: int = 1_000_000  # the credit chat API: 1 credit a request when a model sets none

    @classmethod
    def from_settings(cls, batch_multiplier: float, default_request_micros: int) -> PricingPolicy:
        permille = round(batch_multiplier * PERMILLE)
        if permille < PERMILLE:
            raise ValueError("the batch multiplier must be at least 1")
        if default_request_micros < 0:
            raise ValueError("the default request price must not be negative")
        return cls(permille, default_request_micros)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def token_cost(tokens_in: int, tokens_out: int, price_in_micros: int, price_out_micros: int) -> int:
    """Prices are micro-credits per 1M tokens; the cost rounds up to a whole micro-credit."""
    return _ceil_div(tokens_in * price_in_micros + tokens_out * price_out_micros, MICROS_PER_MILLION_TOKENS)


def apply_batch(cost: int, batch: bool, policy: PricingPolicy) -> int:
    return _ceil_div(cost * policy.batch_multiplier_permille, PERMILLE) if batch else cost


def _or(price: int | None, default: int) -> int:
    return default if price is None else price


def token_class_cost(prices: PriceList, usage: Usage) -> int:
    """The token part of a chat or completion cost: each class at its own price, one ceiling."""
    price_in, price_out = prices.price_in_micros, prices.price_out_micros
    cached = min(max(usage.cached_in, 0), usage.tokens_in)
    written = min(max(usage.cache_write, 0), usage.tokens_in - cached)
    reasoning = min(max(usage.reasoning, 0), usage.tokens_out)
    total = (
        (usage.tokens_in - cached - written) * price_in
        + cached * _or(prices.price_cached_in_micros, price_in)
        + written * _or(prices.price_cache_write_micros, price_in)
        + (usage.tokens_out - reasoning) * price_out
        + reasoning * _or(prices.price_reasoning_micros, price_out)
    )
    return _ceil_div(total, MICROS_PER_MILLION_TOKENS)


def chat_cost(prices: PriceList, usage: Usage, policy: PricingPolicy, batch: bool) -> int:
    """cost_micros for chat and text completions."""
    total = prices.price_request_micros + token_class_cost(prices, usage)
    return _ceil_div(total * policy.batch_multiplier_permille, PERMILLE) if batch else total


def chat_hold(
    prices: PriceList, prompt_bound: int, max_tokens: int, policy: PricingPolicy, batch: bool
) -> int:
    """The most a chat or completion within its bound may cost: every input token at the dearest
    input-side price, every output token at the dearest output-side price (the hold covers any mix)."""
    price_in = max(
        prices.price_in_micros,
        _or(prices.price_cached_in_micros, 0),
        _or(prices.price_cache_write_micros, 0),
    )
    price_out = max(prices.price_out_micros, _or(prices.price_reasoning_micros, 0))
    total = prices.price_request_micros + token_cost(prompt_bound, max_tokens, price_in, price_out)
    return _ceil_div(total * policy.batch_multiplier_permille, PERMILLE) if batch else total


def hold_micros(
    prices: PriceList, operation: Operation, bound: Usage, policy: PricingPolicy, *, batch: bool = False
) -> int:
    """What a request's hold is priced at: its cost over its bound, token classes at their dearest."""
    if operation is Operation.CHAT or operation is Operation.COMPLETION:
        return chat_hold(prices, bound.tokens_in, bound.tokens_out, policy, batch)
    return cost_micros(prices, operation, bound, policy, batch=batch)


def cost_micros(
    prices: PriceList, operation: Operation, usage: Usage, policy: PricingPolicy, *, batch: bool = False
) -> int:
    """The cost of one request on the token-, image- and embedding-priced routes."""
    if operation is Operation.IMAGE:
        variable = usage.units * prices.price_image_micros
    elif operation is Operation.EMBEDDING:
        per_token = prices.price_embedding_micros
        price = prices.price_in_micros if per_token is None else per_token
        variable = token_cost(usage.tokens_in, 0, price, 0)
    else:
        return chat_cost(prices, usage, policy, batch)
    return apply_batch(prices.price_request_micros + variable, batch, policy)


def flat_request_cost(prices: PriceList, policy: PricingPolicy, *, batch: bool = False) -> int:
    """The credit chat API's price: the model's per-request price, else the gateway default; tokens
    are free."""
    flat = prices.price_request_micros or policy.default_request_micros
    return apply_batch(flat, batch, policy)


_BATCH_VALUES = {"1": True, "true": True, "0": False, "false": False, "": False}


def batch_requested(query_string: bytes) -> bool:
    """`?batch=1` (the credit chat API) asks for batch pricing; any query string is parsed only when
    present."""
    if b"batch" not in query_string:
        return False
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("batch")
    if not values:
        return False
    flag = _BATCH_VALUES.get(values[-1].strip().lower())
    if flag is None:
        raise InvalidRequest("'batch' must be 1 or 0.", param="batch")
    return flag
