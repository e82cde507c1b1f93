"""Model backends (embedded llama.cpp, Ollama, OpenAI-compatible) and host provisioning."""
