"""SLaM bot: can self-hosted small language models replace a paid LLM API for one feature?"""

__version__ = "0.1.0"
