"""Griffe extension for the API reference: classes built at import time get their docstrings.

`SearchContext = search_context_model()` is a class made by a function call, so static analysis
sees an attribute without a docstring; the docstring (with its examples) is set at run time.
For a module attribute without a docstring whose runtime value is a class of the same name
defined in that module, this takes the runtime class's docstring.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import griffe


class RuntimeClassDocstrings(griffe.Extension):
    """Fill in the docstring of `Name = make_class()` attributes from the runtime class."""

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is not None or not attr.parent or not attr.parent.is_module:
            return
        module_name = attr.parent.path
        if not module_name.startswith("langgraph_tts"):
            return
        value = getattr(importlib.import_module(module_name), attr.name, None)
        if not inspect.isclass(value) or value.__name__ != attr.name:
            return
        if value.__module__ != module_name or not value.__doc__:
            return
        attr.docstring = griffe.Docstring(inspect.cleandoc(value.__doc__), parent=attr)
