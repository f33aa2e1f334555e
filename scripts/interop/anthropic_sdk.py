#!/usr/bin/env python3
"""Drive our server's Anthropic-compatible HTTP API with the official `anthropic` SDK.

Usage (venv python from scripts/setup-python-peer):

  anthropic_sdk.py BASE_URL TOKEN SCENARIO [--model M] [--prompt P] [--max-retries N]

BASE_URL is the server's `http://127.0.0.1:PORT` (the SDK adds `/v1/messages`); TOKEN a JWT,
sent as the SDK sends keys: `x-api-key`. Scenarios, each printing one JSON document:

  message   one whole answer        -> {"text", "usage", "model", "stop_reason", "stop_sequence"}
  stream    a streamed answer       -> {"text", "events": [event types], "usage",
                                        "start_input_tokens" (message_start's), "stop_reason"}
  tools     a tool round trip: the model (told by a mock marker) calls get_weather, the client
            sends a tool_result block back, the model answers
            -> {"first": {"stop_reason", "calls": [{"id", "name", "input"}]},
                "second": {"stop_reason", "text"}}
  tools_stream  the same round trip, both calls streamed (the SDK puts the tool_use block
            together from input_json_delta events) -> the same, with "events" in each half
  count     messages.count_tokens   -> {"input_tokens"}

--stop S sends `stop_sequences: [S]`.

A call the SDK raises for prints {"error": {"status", "type", "message"}} and exits 0, so tests
can assert on the refusal; any other failure exits 1 with a message on stderr.
Hermetic: HOME and the config dirs point at a temp dir (see _hermetic.py).
"""

import argparse
import base64
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
    if args.stop:
        request["stop_sequences"] = [args.stop]
    if args.scenario in ("tools", "tools_stream"):
        return tools(client, request, args, stream=args.scenario == "tools_stream")
    if args.scenario == "message":
        m = client.messages.create(**request)
        return {
            "text": "".join(b.text for b in m.content if b.type == "text"),
            "usage": {"input_tokens": m.usage.input_tokens, "output_tokens": m.usage.output_tokens},
            "model": m.model,
            "stop_reason": m.stop_reason,
            "stop_sequence": m.stop_sequence,
        }
    if args.scenario == "stream":
        events, start_input = [], None
        with client.messages.stream(**request) as stream:
            for event in stream:
                events.append(event.type)
                if event.type == "message_start":
                    start_input = event.message.usage.input_tokens
            final = stream.get_final_message()
        return {
            "text": "".join(b.text for b in final.content if b.type == "text"),
            "events": events,
            "usage": {"input_tokens": final.usage.input_tokens, "output_tokens": final.usage.output_tokens},
            "start_input_tokens": start_input,
            "stop_reason": final.stop_reason,
        }
    if args.scenario == "count":
        del request["max_tokens"]
        return {"input_tokens": client.messages.count_tokens(**request).input_tokens}
    raise SystemExit(f"unknown scenario {args.scenario}")


WEATHER = {
    "name": "get_weather",
    "description": "The weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def answer(client, request: dict, stream: bool) -> tuple:
    """One call, whole or streamed (then put together by the SDK): the message and event types."""
    if not stream:
        return client.messages.create(**request), None
    events = []
    with client.messages.stream(**request) as s:
        for event in s:
            events.append(event.type)
        return s.get_final_message(), events


def tools(client, request: dict, args, stream: bool) -> dict:
    """The model asks for get_weather; the client answers with a tool_result block."""
    marker = base64.b64encode(args.tool_args.encode()).decode()
    convo = [{"role": "user", "content": f"{args.prompt} [[mock:tool_call=get_weather,tool_args_b64={marker}]]"}]
    request = dict(request, tools=[WEATHER], tool_choice={"type": "auto"}, messages=convo)
    m, events = answer(client, request, stream)
    calls = [{"id": b.id, "name": b.name, "input": b.input} for b in m.content if b.type == "tool_use"]
    first = {"stop_reason": m.stop_reason, "calls": calls, "events": events}
    if not calls:
        return {"first": first}
    convo = convo + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": x["id"], "content": args.tool_result} for x in calls],
        },
    ]
    m, events = answer(client, dict(request, messages=convo), stream)
    second = {
        "stop_reason": m.stop_reason,
        "text": "".join(b.text for b in m.content if b.type == "text"),
        "events": events,
    }
    return {"first": first, "second": second}


def main() -> int:
    p = argparse.ArgumentParser(description="drive the Anthropic-compatible API with the anthropic SDK")
    p.add_argument("base_url")
    p.add_argument("token")
    p.add_argument("scenario")
    p.add_argument("--model", default="mock-model")
    p.add_argument("--prompt", default="say hello")
    p.add_argument("--max-retries", type=int, default=0)
    p.add_argument("--stop", default=None)
    p.add_argument("--tool-args", default='{"city": "Paris"}')
    p.add_argument("--tool-result", default="sunny, 21C")
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
