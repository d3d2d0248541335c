"""Test-time scaling for math reasoning as LangGraph nodes and prebuilt graphs."""
