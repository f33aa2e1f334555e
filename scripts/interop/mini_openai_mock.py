#!/usr/bin/env python3
"""A tiny OpenAI-compatible chat-completions server for hermetic tests.

Stdlib only; binds 127.0.0.1 only. Serves

  POST <any prefix>/chat/completions   JSON answer, or SSE when "stream": true
  GET  <any prefix>/models             model list

Usage:
  mini_openai_mock.py [--port 0] [--reply TEXT] [--chunk-size 8]
                      [--delay-ms 0] [--log FILE] [--port-file FILE]

On start it prints one JSON line to stdout, {"port": N, "base_url": "..."},
then serves until SIGTERM/SIGINT. --port 0 (default) picks a free port;
--port-file also writes the port number to FILE (for shell scripts).

Answer text: --reply TEXT if given; otherwise a deterministic echo of what
was asked, "echo: " + the messages as compact JSON, e.g.
  echo: [{"role":"user","content":"hi"}]
so callers can see exactly how their prompt was laid out (system slot vs
user message, fragment joining).

Streaming splits the answer into pieces of --chunk-size characters, one SSE
`data:` event each (first event carries role=assistant and content ""), then
a chunk with finish_reason "stop", then (always) a usage chunk with empty
choices, then `data: [DONE]`.

Usage numbers are deterministic: prompt_tokens = number of whitespace
separated words in all message contents, completion_tokens = words in the
answer, total = sum.

Special model names (the "model" field of the request):
  contains "error"   -> HTTP 500 {"error": {...}} (an upstream failure)
  contains "slow"    -> sleeps --delay-ms (default 2000 for these) before
                        each chunk / before the JSON answer
--delay-ms applies to every request when set.

--log FILE appends one JSON line per request:
  {"method", "path", "authorization", "body"}.
"""

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS: argparse.Namespace
LOG_LOCK = threading.Lock()


def words(text: str) -> int:
    return len(text.split())


def content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict)
        )
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mini-openai-mock/1"

    def log_message(self, fmt: str, *args: object) -> None:  # quiet
        pass

    def _log(self, body: object) -> None:
        if not ARGS.log:
            return
        rec = {
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "body": body,
        }
        with LOG_LOCK, open(ARGS.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    def _json(self, status: int, obj: object) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._log(None)
        if self.path.rstrip("/").endswith("/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": "mock-model", "object": "model", "owned_by": "mock"}
                    ],
                },
            )
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._log(raw.decode("utf-8", "replace"))
            self._json(400, {"error": {"message": "bad json", "type": "invalid"}})
            return
        self._log(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})
            return

        model = str(body.get("model", "mock-model"))
        messages = body.get("messages") or []
        if "error" in model:
            self._json(
                500,
                {
                    "error": {
                        "message": "mock upstream failure",
                        "type": "server_error",
                        "code": "mock_error",
                    }
                },
            )
            return
        delay = ARGS.delay_ms / 1000.0
        if "slow" in model and not ARGS.delay_ms:
            delay = 2.0

        if ARGS.reply is not None:
            reply = ARGS.reply
        else:
            reply = "echo: " + json.dumps(
                [
                    {"role": m.get("role"), "content": content_text(m.get("content"))}
                    for m in messages
                    if isinstance(m, dict)
                ],
                separators=(",", ":"),
            )
        prompt_tokens = sum(
            words(content_text(m.get("content")))
            for m in messages
            if isinstance(m, dict)
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": words(reply),
            "total_tokens": prompt_tokens + words(reply),
        }
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())

        if not body.get("stream"):
            if delay:
                time.sleep(delay)
            self._json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
            )
            return

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(delta: dict, finish: str | None = None, use: dict | None = None,
                  no_choices: bool = False) -> None:
            chunk: dict = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": []
                if no_choices
                else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if use is not None:
                chunk["usage"] = use
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()

        try:
            event({"role": "assistant", "content": ""})
            size = max(1, ARGS.chunk_size)
            for i in range(0, len(reply), size):
                if delay:
                    time.sleep(delay)
                event({"content": reply[i : i + size]})
            event({}, finish="stop")
            event({}, use=usage, no_choices=True)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def main() -> int:
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--reply", default=None)
    p.add_argument("--chunk-size", type=int, default=8)
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--log", default=None)
    p.add_argument("--port-file", default=None)
    ARGS = p.parse_args()

    httpd = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    if ARGS.port_file:
        with open(ARGS.port_file, "w") as f:
            f.write(f"{port}\n")
    print(
        json.dumps({"port": port, "base_url": f"http://127.0.0.1:{port}/v1"}),
        flush=True,
    )

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
