"""What the README's serving recipe sets, and the request limits that follow from a server.

A leaf module (no imports from the package) so both the settings and the clients can use it.
"""

from __future__ import annotations

__all__ = ["RECIPE_MAX_MODEL_LEN", "RECIPE_PROMPT_ROOM", "cap_max_tokens"]

RECIPE_PROMPT_ROOM = 4096
"""Prompt tokens the recipe leaves room for beside the largest `max_tokens`."""
RECIPE_MAX_MODEL_LEN = 16384 + RECIPE_PROMPT_ROOM
"""`--max-model-len` of the policy in the README's recipe: SCALE's System-2 `max_tokens`
(16384, the paper's) plus a prompt, so no default request is ever capped on that server."""


def cap_max_tokens(max_tokens: int | None, max_model_len: int | None) -> int | None:
    """`max_tokens` lowered to the server's `max_model_len` (vLLM answers 400 to a request whose
    `max_tokens` is larger, and itself lowers one that only overflows with the prompt)."""
    if max_tokens is None or max_model_len is None or max_model_len <= 0:
        return max_tokens
    return min(max_tokens, max_model_len)
