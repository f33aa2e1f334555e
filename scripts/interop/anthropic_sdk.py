#!/usr/bin/env python3
"""Drive our server's Anthropic-compatible HTTP API with the official `anthropic` SDK.

Usage (venv python from scripts/setup-python-peer):

  anthropic_sdk.py BASE_URL TOKEN SCENARIO [--model M] [--prompt P] [--max-retries N]

BASE_URL is the server's `http://127.0.0.1:PORT` (the SDK adds `/v1/messages`); TOKEN a JWT,
sent as the SDK sends keys: `x-api-key`. Scenarios, each printing one JSON document:

  message   one whole answer        -> {"text", "usage", "model", "stop_reason"}
  stream    a streamed answer       -> {"text", "events": [event types], "usage"}
  count     messages.count_tokens   -> {"input_tokens"}

A call the SDK raises for prints {"error": {"status", "type", "message"}} and exits 0, so tests
can assert on the refusal; any other failure exits 1 with a message on stderr.
Hermetic: HOME and the config dirs point at a temp dir (see _hermetic.py).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hermetic import emit, isolate  # noqa: E402

isolate()

import anthropic  # noqa: E402

# Every SDK call ends within this many seconds.
TIMEOUT = 30.0


def run(args) -> dict:
    client = anthropic.Anthropic(
        base_url=args.base_url, api_key=args.token, max_retries=args.max_retries, timeout=TIMEOUT
    )
    request = dict(
        model=args.model,
        max_tokens=64,
        system="You are terse.",
        messages=[{"role": "user", "content": args.prompt}],
    )
    if args.scenario == "message":
        m = client.messages.create(**request)
        return {
            "text": "".join(b.text for b in m.content if b.type == "text"),
            "usage": {"input_tokens": m.usage.input_tokens, "output_tokens": m.usage.output_tokens},
            "model": m.model,
            "stop_reason": m.stop_reason,
        }
    if args.scenario == "stream":
        events = []
        with client.messages.stream(**request) as stream:
            for event in stream:
                events.append(event.type)
            final = stream.get_final_message()
        return {
            "text": "".join(b.text for b in final.content if b.type == "text"),
            "events": events,
            "usage": {"input_tokens": final.usage.input_tokens, "output_tokens": final.usage.output_tokens},
            "stop_reason": final.stop_reason,
        }
    if args.scenario == "count":
        del request["max_tokens"]
        return {"input_tokens": client.messages.count_tokens(**request).input_tokens}
    raise SystemExit(f"unknown scenario {args.scenario}")


def main() -> int:
    p = argparse.ArgumentParser(description="drive the Anthropic-compatible API with the anthropic SDK")
    p.add_argument("base_url")
    p.add_argument("token")
    p.add_argument("scenario")
    p.add_argument("--model", default="mock-model")
    p.add_argument("--prompt", default="say hello")
    p.add_argument("--max-retries", type=int, default=0)
    args = p.parse_args()
    try:
        out = run(args)
    except anthropic.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        err = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
        out = {"error": {"status": e.status_code, "type": err.get("type"), "message": err.get("message")}}
    emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
