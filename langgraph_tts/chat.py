"""`TTSChatModel`: a LangChain chat model whose every reply is a test-time scaling run.

Any code that takes a chat model (a chain, an agent's final-answer step, an evaluation
harness) gets a strategy's answer by swapping the model: the last human message is the
problem, the reply states the answer, and its `response_metadata["langgraph_tts"]` holds the
run's report and ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from .solve import create_solve_graph

__all__ = ["TTSChatModel"]


class TTSChatModel(BaseChatModel):
    """A chat model that answers with `strategy` at `budget` over the given clients.

    Examples:
        The last human message is the problem; the reply states the answer:

        >>> from langgraph_tts.sim.inprocess import sim_clients
        >>> model = TTSChatModel(strategy="best_of_n", settings={"budget": 4, "seed": 0},
        ...                      **sim_clients(seed=2))
        >>> reply = model.invoke("What is 7 times 6?")
        >>> print(reply.content)
        The answer is $\\boxed{720}$.
        >>> report = reply.response_metadata["langgraph_tts"]
        >>> report["answer"], report["strategy"], report["ledger"]["samples"]
        ('720', 'best_of_n', 4)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    strategy: str = "dora"
    settings: dict[str, Any] = Field(default_factory=dict)
    """Any setting of the solve graph (`budget`, `base_url`, `tau`, ...), validated at once."""
    policy: Any = None
    prm: Any = None
    embedder: Any = None
    _graph: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # built outside pydantic's validation, so a bad setting is a ConfigError of its own
        self._graph = create_solve_graph(
            self.strategy,
            policy=self.policy,
            prm=self.prm,
            embedder=self.embedder,
            name="tts_chat_model",
            **self.settings,
        )

    @property
    def _llm_type(self) -> str:
        return "langgraph-tts"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            **{k: v for k, v in self.settings.items() if "key" not in k},
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        out = self._graph.invoke({"messages": list(messages)})
        return _result(out["messages"])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        out = await self._graph.ainvoke({"messages": list(messages)})
        return _result(out["messages"])


def _result(messages: Sequence[BaseMessage]) -> ChatResult:
    last = messages[-1]
    reply = AIMessage(content=last.content, response_metadata=dict(last.response_metadata))
    return ChatResult(generations=[ChatGeneration(message=reply)])
