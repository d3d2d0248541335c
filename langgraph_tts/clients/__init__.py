"""Model clients: the policy (chat completions), the PRM (`/pooling`), embedders, a verifier.

Every client is async first (`generate`/`score`/`embed`) with a blocking `*_sync` twin, and
returns the plain values of `langgraph_tts.clients.types` with the server's exact usage.
See docs/clients.md.
"""

from langgraph_tts.clients._http import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    Backoff,
    HTTPClient,
    Transport,
    run_sync,
)
from langgraph_tts.clients.chat_model import ChatModelPolicy
from langgraph_tts.clients.embed import HashingEmbedder, LocalEmbedder, OpenAIEmbedder
from langgraph_tts.clients.policy import ChatPolicy
from langgraph_tts.clients.prm import PRM_TEMPLATES, PoolingPRM, aggregate, template_for_model
from langgraph_tts.clients.types import (
    ChatMessage,
    EarlyStopPolicy,
    Embedder,
    Embeddings,
    Generation,
    Policy,
    RewardModel,
    Sample,
    SamplingParams,
    Scores,
    StopTest,
    Usage,
)
from langgraph_tts.clients.verifier import GenerativeVerifier

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "PRM_TEMPLATES",
    "Backoff",
    "ChatMessage",
    "ChatModelPolicy",
    "ChatPolicy",
    "EarlyStopPolicy",
    "Embedder",
    "Embeddings",
    "Generation",
    "GenerativeVerifier",
    "HTTPClient",
    "HashingEmbedder",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "Policy",
    "PoolingPRM",
    "RewardModel",
    "Sample",
    "SamplingParams",
    "Scores",
    "StopTest",
    "Transport",
    "Usage",
    "aggregate",
    "run_sync",
    "template_for_model",
]
