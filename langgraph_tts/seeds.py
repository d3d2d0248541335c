"""Per-request sampling seeds that never overlap, within a problem or across problems.

vLLM seeds the i-th choice of a request with `seed + i`, so two requests whose seeds are
closer than their `n` draw identical samples; and a run seed reused as is by every problem
of an evaluation correlates the problems. So each request's seed is a hash of the run seed,
the problem and the request's own key, placed on a grid of `SEED_STRIDE`: two requests of a
run share choices only if their hashes collide on the same grid point (odds about
k² / 2**47 for k requests).
"""

from __future__ import annotations

import hashlib

__all__ = ["MAX_SEED", "SEED_STRIDE", "request_seed"]

SEED_STRIDE = 1 << 16
"""Distance between two request seeds: room for `n` up to 65,536 choices per request."""
_SLOTS = 1 << 46
MAX_SEED = _SLOTS * SEED_STRIDE - 1
"""Largest seed + i sent (2**62 - 1): inside vLLM's int64 `seed` field."""


def request_seed(run_seed: int | None, problem: str, *key: int | str, n: int = 1) -> int | None:
    """The seed of one request of `n` choices, or `None` when the run is unseeded.

    Args:
        run_seed: The run's `seed` setting (`--seed`).
        problem: The problem text (any text that identifies the problem).
        *key: What tells this request from the problem's other requests (iteration, node,
            stage, attempt...).
        n: Choices in the request; choice i is seeded `seed + i` by vLLM.

    Raises:
        ValueError: `n` is larger than `SEED_STRIDE`.
    """
    if run_seed is None:
        return None
    if not 1 <= n <= SEED_STRIDE:
        raise ValueError(f"n must be between 1 and {SEED_STRIDE} for spaced seeds, got {n}")
    text = repr((int(run_seed), problem, key)).encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return (int.from_bytes(digest, "big") % _SLOTS) * SEED_STRIDE
