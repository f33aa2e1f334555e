#!/usr/bin/env python3
"""Drive our server's OpenAI-compatible HTTP API with the official `openai` SDK.

Usage (venv python from scripts/setup-python-peer):

  openai_sdk.py BASE_URL TOKEN SCENARIO [--model M] [--prompt P] [--max-retries N]

BASE_URL is the server's `http://127.0.0.1:PORT/v1`; TOKEN a JWT (any text when auth is off).
Scenarios, each printing one JSON document:

  models    client.models.list()              -> {"ids": [...]}
  chat      one non-streaming completion      -> {"text", "usage", "model", "finish_reason"}
  stream    streaming with include_usage      -> {"text", "chunks", "usage_chunks", "usage", "finish_reason"}
  schema    response_format json_schema       -> {"text", "parsed"}
  calls     --count N non-streaming calls     -> {"succeeded", "errors": [{"status", "code", "type", ...}]}
  session   calls on demand, so a test can interleave them with its own: prints {"ready": true}
            once the SDK is loaded, then for each line N read from stdin makes N calls as
            `calls` does and prints their result, one JSON line each, until stdin ends
  tools     a tool round trip: the model (told by a mock marker) calls get_weather, the
            client sends the result back as a `tool` message, the model answers
            -> {"first": {"finish_reason", "content", "calls": [{"id", "name", "arguments"}]},
                "second": {"finish_reason", "text"}}
  tools_stream  the same round trip, both calls streamed (tool calls put together from
            `delta.tool_calls` fragments) -> the same, with "chunks" in each half
  retry     the SDK's own 429 retry: a held stream takes the only concurrency slot; a second
            call is refused with 429, which releases the held stream (an httpx response hook,
            no sleeping), and the SDK retries after our retry-after-ms and succeeds
            -> {"text", "statuses": [...], "retry_after_ms": [...]}

A call the SDK raises for prints {"error": {"class" (the SDK's exception class), "retry_after"
(the header), "status", "code", "type", "param", "message"}} and exits 0,
so tests can assert on the refusal; any other failure exits 1 with a message on stderr.
Hermetic: HOME and the config dirs point at a temp dir (see _hermetic.py).
"""

import argparse
import base64
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hermetic import emit, isolate  # noqa: E402

isolate()

import httpx  # noqa: E402
import openai  # noqa: E402

# Every SDK call ends within this many seconds.
TIMEOUT = 30.0


def api_error(e: openai.APIStatusError) -> dict:
    body = e.body if isinstance(e.body, dict) else {}
    return {
        "class": type(e).__name__,
        "retry_after": e.response.headers.get("retry-after"),
        "status": e.status_code,
        "code": body.get("code"),
        "type": body.get("type"),
        "param": body.get("param"),
        "message": body.get("message"),
    }


def client(args, **kw) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=args.base_url,
        api_key=args.token,
        max_retries=args.max_retries,
        timeout=TIMEOUT,
        **kw,
    )


def messages(prompt: str) -> list:
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": prompt}]},
    ]


def run(args) -> dict:
    if args.scenario == "models":
        return {"ids": [m.id for m in client(args).models.list()]}
    if args.scenario == "chat":
        r = client(args).chat.completions.create(
            model=args.model, messages=messages(args.prompt), temperature=0.2, max_tokens=64
        )
        return {
            "text": r.choices[0].message.content,
            "usage": r.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}),
            "model": r.model,
            "finish_reason": r.choices[0].finish_reason,
        }
    if args.scenario == "stream":
        stream = client(args).chat.completions.create(
            model=args.model,
            messages=messages(args.prompt),
            stream=True,
            stream_options={"include_usage": True},
        )
        text, chunks, usages, finish = "", 0, [], None
        for chunk in stream:
            chunks += 1
            if chunk.usage is not None:
                usages.append(
                    chunk.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
                )
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
        return {
            "text": text,
            "chunks": chunks,
            "usage_chunks": len(usages),
            "usage": usages[-1] if usages else None,
            "finish_reason": finish,
        }
    if args.scenario == "schema":
        schema = {
            "type": "object",
            "properties": {"name": {"type": "string"}, "replicas": {"type": "integer"}},
            "required": ["name", "replicas"],
        }
        r = client(args).chat.completions.create(
            model=args.model,
            messages=messages(args.prompt),
            response_format={"type": "json_schema", "json_schema": {"name": "deploy", "schema": schema}},
        )
        text = r.choices[0].message.content
        return {"text": text, "parsed": json.loads(text)}
    if args.scenario == "calls":
        return calls(client(args), args, args.count)
    if args.scenario == "session":
        c = client(args)
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            print(json.dumps(calls(c, args, int(line))), flush=True)
        return {"ok": True}
    if args.scenario in ("tools", "tools_stream"):
        return tools(args, stream=args.scenario == "tools_stream")
    if args.scenario == "retry":
        return retry(args)
    raise SystemExit(f"unknown scenario {args.scenario}")


def calls(c: openai.OpenAI, args, count: int) -> dict:
    """`count` non-streaming calls; how many succeeded and the errors of the others."""
    ok, errors = 0, []
    for i in range(count):
        try:
            c.chat.completions.create(model=args.model, messages=messages(f"{args.prompt} {i}"))
            ok += 1
        except openai.APIStatusError as e:
            errors.append(api_error(e))
    return {"succeeded": ok, "errors": errors}


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def streamed(c, **kw) -> dict:
    """One streamed completion, put together as the SDK user would: text, tool calls by index."""
    text, calls, finish, chunks = "", {}, None, 0
    for chunk in c.chat.completions.create(stream=True, **kw):
        chunks += 1
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for tc in choice.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id:
                    call["id"] = tc.id
                if tc.function and tc.function.name:
                    call["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
    return {"text": text, "calls": [calls[i] for i in sorted(calls)], "finish_reason": finish, "chunks": chunks}


def tools(args, stream: bool) -> dict:
    """The model asks for get_weather; the client answers with the tool's result."""
    c = client(args)
    marker = base64.b64encode(args.tool_args.encode()).decode()
    convo = messages(f"{args.prompt} [[mock:tool_call=get_weather,tool_args_b64={marker}]]")
    kw = dict(model=args.model, tools=[WEATHER], tool_choice="auto")
    if stream:
        first = streamed(c, messages=convo, **kw)
        calls, content = first["calls"], first["text"] or None
        assistant = {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {"id": x["id"], "type": "function", "function": {"name": x["name"], "arguments": x["arguments"]}}
                for x in calls
            ],
        }
    else:
        r = c.chat.completions.create(messages=convo, **kw)
        msg = r.choices[0].message
        calls = [{"id": t.id, "name": t.function.name, "arguments": t.function.arguments} for t in msg.tool_calls or []]
        first = {"finish_reason": r.choices[0].finish_reason, "content": msg.content, "calls": calls}
        assistant = msg.model_dump(exclude_none=True, include={"role", "content", "tool_calls"})
    if not calls:
        return {"first": first}
    convo = convo + [assistant] + [
        {"role": "tool", "tool_call_id": x["id"], "content": args.tool_result} for x in calls
    ]
    if stream:
        second = streamed(c, messages=convo, **kw)
    else:
        r = c.chat.completions.create(messages=convo, **kw)
        second = {"finish_reason": r.choices[0].finish_reason, "text": r.choices[0].message.content}
    return {"first": first, "second": second}


def retry(args) -> dict:
    """A held stream takes the only slot; the refused call releases it and is retried."""
    statuses, waits = [], []
    refused = threading.Event()

    def hook(response: httpx.Response):
        statuses.append(response.status_code)
        if response.status_code == 429:
            waits.append(response.headers.get("retry-after-ms"))
            refused.set()

    holder = client(args)
    held = holder.chat.completions.create(
        model=args.model,
        messages=messages("hold [[mock:chunks=3,hold_after=1]]"),
        stream=True,
    )
    first = next(iter(held))  # the stream is open and holds the slot
    del first
    result = {}

    def second():
        c = client(args, http_client=httpx.Client(event_hooks={"response": [hook]}, timeout=TIMEOUT))
        r = c.chat.completions.create(model=args.model, messages=messages(args.prompt))
        result["text"] = r.choices[0].message.content

    worker = threading.Thread(target=second)
    worker.start()
    if not refused.wait(TIMEOUT):
        raise SystemExit("the second call was never refused with 429")
    held.close()  # frees the slot; the SDK's retry after retry-after-ms then gets through
    worker.join(TIMEOUT)
    if worker.is_alive() or "text" not in result:
        raise SystemExit("the retried call did not succeed")
    return {"text": result["text"], "statuses": statuses, "retry_after_ms": waits}


def main() -> int:
    p = argparse.ArgumentParser(description="drive the OpenAI-compatible API with the openai SDK")
    p.add_argument("base_url")
    p.add_argument("token")
    p.add_argument("scenario")
    p.add_argument("--model", default="mock-model")
    p.add_argument("--prompt", default="say hello")
    p.add_argument("--max-retries", type=int, default=0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--tool-args", default='{"city": "Paris"}')
    p.add_argument("--tool-result", default="sunny, 21C")
    args = p.parse_args()
    try:
        out = run(args)
    except openai.APIStatusError as e:
        out = {"error": api_error(e)}
    emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
