"""Embedding geometry of the simulated world (a stand-in for BGE-M3 on math text).

A text that names a direction is a unit vector built from shared parts: one common "math text"
part (so every pair is fairly similar, as with BGE-M3), a topic part, a family part, a variant
part, a step-progress part and a small bag-of-words part. Weights (squared) are chosen so that

- paraphrases of one direction have cosine ~0.97-0.995,
- variants of one family (near-paraphrase directions) ~0.93-0.95,
- other directions ~0.78-0.87 (higher within a topic),

which leaves DORA's T_s = 0.01 softmax a realistic gap to work with. Text without a direction
keyword is a plain hashed bag of words.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from langgraph_tts.sim.vocab import KEYWORD_RE, PHRASE_INFO
from langgraph_tts.sim.world import rng_for

__all__ = ["embed_text"]

_W_COMMON, _W_FAMILY, _W_VARIANT, _W_STEPS, _W_WORDS = np.sqrt(
    np.array([0.77, 0.175, 0.005, 0.02, 0.03])
)
_TOPIC_SHARE = 0.6
"""Families of one topic share this much of their family vector (cosine 0.36 between them)."""
_WORD_RE = re.compile(r"\w+")
_STEP_RE = re.compile(r"##\s*Step\s+\d+\s*:")
_MAX_CACHED_CHUNKS = 256
"""Longer texts are summed in one go (bounds the recursion of `_word_sum`)."""


@functools.lru_cache(maxsize=1 << 16)
def _unit(kind: str, key: str, dim: int, seed: int) -> np.ndarray:
    v = rng_for("embed", kind, key, dim, seed).standard_normal(dim)
    v /= np.linalg.norm(v)
    v.setflags(write=False)
    return v


def _normalise(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


@functools.lru_cache(maxsize=4096)
def _word_sum(text: str, dim: int, seed: int) -> tuple[np.ndarray, int]:
    """Sum of the word vectors of `text`, added in order, and the number of words.

    A candidate is its parent's text plus one step, so the sum is continued from the cached
    sum of the text before its last blank line (no word crosses whitespace): the same
    additions in the same order, hence the same bits, without re-adding the whole prefix.
    """
    cut = text.rfind("\n\n")
    if cut > 0 and text.count("\n\n") <= _MAX_CACHED_CHUNKS:
        head, n = _word_sum(text[:cut], dim, seed)
        acc = head.copy()
    else:
        cut, acc, n = 0, np.zeros(dim), 0
    words = _WORD_RE.findall(text[cut:].lower())
    for w in words:
        acc += _unit("word", w, dim, seed)
    acc.setflags(write=False)
    return acc, n + len(words)


def _bag_of_words(text: str, dim: int, seed: int) -> np.ndarray:
    acc, n = _word_sum(text, dim, seed)
    if n == 0:
        return _unit("empty", "", dim, seed)
    return _normalise(acc)


@functools.lru_cache(maxsize=256)
def _family_vector(family: str, topic: str, dim: int, seed: int) -> np.ndarray:
    v = _TOPIC_SHARE * _unit("topic", topic, dim, seed)
    v = v + np.sqrt(1 - _TOPIC_SHARE**2) * _unit("family", family, dim, seed)
    out = _normalise(v)
    out.setflags(write=False)
    return out


def embed_text(text: str, *, dim: int, seed: int) -> np.ndarray:
    """Unit vector of `text` (deterministic given the text, the dimension and the seed)."""
    words = _bag_of_words(text, dim, seed)
    kw = KEYWORD_RE.search(text)
    if kw is None:
        return words
    phrase = kw.group(1)
    family, topic = PHRASE_INFO[phrase]
    k = max(1, len(_STEP_RE.findall(text)))
    steps = _normalise(
        sum((_unit("step", f"{family}|{j}", dim, seed) for j in range(1, k + 1)), np.zeros(dim))
    )
    v = (
        _W_COMMON * _unit("common", "", dim, seed)
        + _W_FAMILY * _family_vector(family, topic, dim, seed)
        + _W_VARIANT * _unit("variant", phrase, dim, seed)
        + _W_STEPS * steps
        + _W_WORDS * words
    )
    return _normalise(v)
