"""The mock team: a stand-in for a team's OpenAI-compatible GPU endpoint (vLLM, llama.cpp
server, ...).

Tests, ``showcase demo`` and rehearsals run it where a team's server would be. It streams
on an absolute schedule (chunk k at t0 + ttft + k * itl, from the loop clock, so sleeps
never drift), speaks the wire format of the server it imitates (``dialect``) and fails the
ways real servers fail (``fault``): an HTTP error before the stream, an error event inside
it, a TCP reset, no ``[DONE]``, a malformed event, events cut at awkward byte boundaries,
a stall, an endless answer.

The HTTP/1.1 server is written on asyncio streams rather than uvicorn: the faults need
byte-exact writes and a real reset (SO_LINGER 0, then close), and a mock that measures
others should cost next to nothing in CPU. A request may carry ``"mock": {...}`` with any
:class:`MockConfig` field but ``api_key`` and ``seed``, so one mock serves many tests.

Modules: ``config`` (the settings, each checked), ``connection`` (HTTP on asyncio
streams), ``answers`` (the words, the schedule, each dialect's wire format) and
``server`` (``MockServer`` and ``serve_mock``).
"""
