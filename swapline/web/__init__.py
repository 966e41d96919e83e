"""The browser app: a page that sends its camera over WebRTC and shows the swapped stream back.

Needs the 'web' extra (aiortc, starlette, uvicorn). `WebServer` is the ASGI app and its state,
`RunningServer` runs it on a thread, `serve_forever` in the foreground (`swapline serve`).
"""

from swapline.web.settings import WebSettings, is_loopback

__all__ = ["WebSettings", "is_loopback"]
