#!/usr/bin/env python3
"""Run one prompt through vibectl 0.11.6's ProxyModelAdapter, as vibectl does.

Usage (venv python from scripts/setup-python-peer):

  proxy_adapter.py URL MODEL PROMPT [--system TEXT] [--jwt-path FILE]
                   [--ca-bundle FILE] [--mode both|execute|stream]
                   [--schema] [--expect-error SUBSTRING]

URL is a proxy URL, vibectl-server[-insecure]://[JWT@]host[:port].
The token may also come from --jwt-path (profile jwt_path) or, with neither,
env VIBECTL_JWT_TOKEN; the CA bundle from --ca-bundle (profile
ca_bundle_path) or env VIBECTL_CA_BUNDLE: the same sources, in the same
order, as 0.11.6's ProxyModelAdapter.

What it does, step for step like vibectl 0.11.6:
  1. In a temp client config dir (hermetic, see _hermetic.py) save a proxy
     profile "interop" {server_url, jwt_path?, ca_bundle_path?} and make it
     active, through Config.set_proxy_profile / set_active_proxy_profile
     (what `vibectl setup-proxy configure --no-test` writes).
  2. adapter = vibectl.model_adapter.get_model_adapter(Config())
     -> ProxyModelAdapter (parse_proxy_url picks TLS/plaintext and token).
  3. model = adapter.get_model(MODEL)  (GetServerInfo + alias resolution).
  4. execute: text, metrics = await adapter.execute_and_log_metrics(model,
     SystemFragments, UserFragments[, response_model])  (llm_utils.run_llm).
  5. stream: iterator, collector = await adapter.stream_execute_and_log_metrics(
     ...) and drain it, then await collector.get_metrics()
     (command_handler's live "vibe" summary path).
--schema passes vibectl.schema.LLMPlannerResponse as response_model (as
`vibectl vibe` does), which fills ExecuteRequest.response_model_schema; the
execute and stream texts are then also parsed with
LLMPlannerResponse.model_validate_json, as vibectl does with a planner reply
("schema_valid", and "schema_error" when it does not parse).

Prints one JSON document: {"adapter", "resolved_model", "execute": {"text",
"metrics"}, "stream": {"chunks", "text", "metrics"}, "ok"}; metrics are
0.11.6 LLMMetrics fields (token_input, token_output, latency_ms,
total_processing_duration_ms, call_count, cost_usd). On failure: "ok":
false, "stage", "error" and exit 1 (with --expect-error SUBSTRING the run
succeeds only if a stage fails with an error containing SUBSTRING).
"""

import argparse
import asyncio
import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hermetic import emit, isolate, quiet_logging  # noqa: E402

isolate(keep=("VIBECTL_JWT_TOKEN", "VIBECTL_CA_BUNDLE"))


def metrics_json(m: object) -> dict | None:
    if m is None:
        return None
    d = dataclasses.asdict(m)  # type: ignore[call-overload]
    d.pop("fragments_used", None)
    return d


async def run(args: argparse.Namespace, out: dict) -> None:
    from vibectl.config import Config
    from vibectl.model_adapter import get_model_adapter, reset_model_adapter
    from vibectl.types import Fragment, SystemFragments, UserFragments

    quiet_logging()

    out["stage"] = "config"
    cfg = Config()
    profile: dict = {"server_url": args.url}
    if args.jwt_path:
        profile["jwt_path"] = str(Path(args.jwt_path).expanduser().absolute())
    if args.ca_bundle:
        profile["ca_bundle_path"] = str(Path(args.ca_bundle).expanduser().absolute())
    cfg.set_proxy_profile("interop", profile)
    cfg.set_active_proxy_profile("interop")

    out["stage"] = "get_model_adapter"
    reset_model_adapter()
    adapter = get_model_adapter(Config())
    out["adapter"] = type(adapter).__name__
    out["use_tls"] = getattr(adapter, "use_tls", None)
    out["token_sent"] = bool(getattr(adapter, "jwt_token", None))

    out["stage"] = "get_model"
    model = adapter.get_model(args.model)
    out["resolved_model"] = getattr(model, "model_name", str(model))

    system = SystemFragments([Fragment(args.system)] if args.system else [])
    user = UserFragments([Fragment(args.prompt)])
    kwargs: dict = {}
    planner = None
    if args.schema:
        from vibectl.schema import LLMPlannerResponse

        planner = LLMPlannerResponse
        kwargs["response_model"] = LLMPlannerResponse

    def check_schema(result: dict) -> None:
        if planner is None:
            return
        try:
            planner.model_validate_json(result["text"])
            result["schema_valid"] = True
        except Exception as e:  # pydantic.ValidationError, or not JSON at all
            result["schema_valid"] = False
            result["schema_error"] = str(e)

    if args.mode in ("both", "execute"):
        out["stage"] = "execute"
        text, metrics = await adapter.execute_and_log_metrics(
            model=model, system_fragments=system, user_fragments=user, **kwargs
        )
        out["execute"] = {"text": text, "metrics": metrics_json(metrics)}
        check_schema(out["execute"])

    if args.mode in ("both", "stream"):
        out["stage"] = "stream"
        iterator, collector = await adapter.stream_execute_and_log_metrics(
            model=model, system_fragments=system, user_fragments=user, **kwargs
        )
        chunks = [c async for c in iterator]
        out["stream"] = {
            "chunks": chunks,
            "text": "".join(chunks),
            "metrics": metrics_json(await collector.get_metrics()),
        }
        check_schema(out["stream"])

    out.pop("stage")
    close = getattr(adapter, "close", None)
    if close:
        close()


def main() -> int:
    p = argparse.ArgumentParser(description="vibectl 0.11.6 ProxyModelAdapter driver")
    p.add_argument("url")
    p.add_argument("model")
    p.add_argument("prompt")
    p.add_argument("--system", default=None)
    p.add_argument("--jwt-path", default=None)
    p.add_argument("--ca-bundle", default=None)
    p.add_argument("--mode", default="both", choices=["both", "execute", "stream"])
    p.add_argument("--schema", action="store_true")
    p.add_argument("--expect-error", default=None, metavar="SUBSTRING")
    args = p.parse_args()

    out: dict = {"url_scheme": args.url.split("://", 1)[0], "model": args.model}
    try:
        asyncio.run(run(args, out))
        out["ok"] = args.expect_error is None
        if args.expect_error is not None:
            out["error"] = f"expected an error containing {args.expect_error!r}, got success"
    except Exception as e:  # ValueError is what the adapter raises
        out["ok"] = args.expect_error is not None and args.expect_error in str(e)
        out["error"] = str(e)
        out["error_type"] = type(e).__name__
    emit(out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
