#!/usr/bin/env python3
"""Drive our server's OpenAI-compatible HTTP API with the official `openai` SDK.

Usage (venv python from scripts/setup-python-peer):

  openai_sdk.py BASE_URL TOKEN SCENARIO [--model M] [--prompt P] [--max-retries N]

BASE_URL is the server's `http://127.0.0.1:PORT/v1`; TOKEN a JWT (any text when auth is off).
Scenarios, each printing one JSON document:

  models    client.models.list()              -> {"ids": [...]}
  chat      one non-streaming completion      -> {"text", "usage", "model", "finish_reason"}
  stream    streaming with include_usage      -> {"text", "chunks", "usage_chunks", "usage"}
  schema    response_format json_schema       -> {"text", "parsed"}
  calls     --count N non-streaming calls     -> {"succeeded", "errors": [{"status", "code", "type", ...}]}
  session   calls on demand, so a test can interleave them with its own: prints {"ready": true}
            once the SDK is loaded, then for each line N read from stdin makes N calls as
            `calls` does and prints their result, one JSON line each, until stdin ends
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
        text, chunks, usages = "", 0, []
        for chunk in stream:
            chunks += 1
            if chunk.usage is not None:
                usages.append(
                    chunk.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
                )
            for choice in chunk.choices:
                text += choice.delta.content or ""
        return {"text": text, "chunks": chunks, "usage_chunks": len(usages), "usage": usages[-1] if usages else None}
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
    args = p.parse_args()
    try:
        out = run(args)
    except openai.APIStatusError as e:
        out = {"error": api_error(e)}
    emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
