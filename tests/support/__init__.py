"""Shared test fakes (the wire of Slack, Ollama, AWS, a llama.cpp server), seeders and ports.

Imported as `tests.support.NAME`; the fixtures stay in tests/conftest.py."""
