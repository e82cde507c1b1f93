"""AWS GPU host for Ollama: launch (`slam host up`), status, teardown and a TTL guard.

boto3 is imported inside functions so `slam --help` stays fast.
"""
