"""The HTTP floor: a raw ASGI app that reads the body and returns a constant JSON.

It stands for what any Python server pays per request under uvicorn (uvloop +
httptools); the serving benchmark reports finmaas as a ratio of it.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"predictions":[{"probability":0.5,"label":"good","score":600.0}]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
