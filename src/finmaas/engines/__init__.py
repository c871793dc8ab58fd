"""LLM engines and the clients of upstream engines (DESIGN.md's ``engines/``).

:mod:`.upstream` is a small client of an OpenAI-compatible server (vLLM, TGI,
llama.cpp's server, Ollama, a vendor API): list its models, ask for one completion.
It knows nothing of the registry; ``publish`` uses it to check an endpoint at push.
"""
