#!/usr/bin/env python3
"""Drive a vibectl LLM proxy server with vibectl 0.11.6's generated gRPC stubs.

Usage (run with the venv python from scripts/setup-python-peer):

  raw_stubs.py ADDR [--token T] [--tls-ca FILE | --tls] [--server-name NAME]
               [--mode full|info|execute|stream|no-token|bad-token|auth]
               [--model M] [--prompt P] [--system S] [--unknown-model M]
               [--expect-error CODE] [--bad-token T] [--timeout SECS]

ADDR is host:port, or a proxy URL vibectl-server[-insecure]://[JWT@]host[:port]
(scheme picks TLS; the URL's user part is the token). Token: --token, else
the URL's, else env VIBECTL_JWT_TOKEN. TLS: --tls-ca FILE (custom roots) or
--tls (system roots); with TLS the channel uses the exact options 0.11.6's
client passes (ssl_min/max_tls_version TLSv1_3, which grpc ignores, and
keepalive 30 s / 5 s, permit without calls).
--server-name overrides the TLS name checked (grpc.ssl_target_name_override).

Modes (all print ONE JSON document on stdout):
  full (default)  GetServerInfo, Execute, StreamExecute, and Execute with an
                  unknown model (expects an in-band MODEL_NOT_FOUND-style
                  error). Exit 0 when every RPC has status OK, Execute and
                  the stream succeed (or fail with --expect-error CODE), and
                  the stream order is text_chunk* complete final_metrics.
  info|execute|stream   just that RPC, same checks.
  no-token        every RPC without an authorization header.
  bad-token       every RPC with `authorization: Bearer <--bad-token or junk>`.
  auth            no-token, bad-token and a wrong scheme (`Basic ...`).
                  Auth modes exit 0 when every call got UNAUTHENTICATED
                  (override with --expect-status NAME).

JSON keys: "server_info" (models, default_model, model_aliases, limits with
only the fields that are present, ...), "execute" / "stream" (response text,
actual model, request_id echo, metrics with unset optional fields as null
plus "metrics_present", chunk kinds in order, in-band error), "rpc_errors"
({rpc: {"status": NAME, "details", "trailing_metadata"}}), "checks"
(list of failed expectations), "ok".
"""

import argparse
import os
import sys
import uuid
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hermetic import emit, isolate  # noqa: E402

isolate(keep=("VIBECTL_JWT_TOKEN",))

import grpc  # noqa: E402

from vibectl.proto import llm_proxy_pb2 as pb  # noqa: E402
from vibectl.proto import llm_proxy_pb2_grpc as pb_grpc  # noqa: E402

METRIC_OPTIONAL = ("input_tokens", "output_tokens", "total_tokens", "cost_usd")
LIMIT_FIELDS = (
    "max_requests_per_minute",
    "max_concurrent_requests",
    "max_input_length",
    "request_timeout_seconds",
)

# Exactly what vibectl 0.11.6's ProxyModelAdapter._get_channel and
# setup_proxy_cmd.check_proxy_connection pass for TLS channels.
TLS_OPTIONS = [
    ("grpc.ssl_min_tls_version", "TLSv1_3"),
    ("grpc.ssl_max_tls_version", "TLSv1_3"),
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", True),
]


def parse_addr(addr: str) -> tuple[str, bool | None, str | None]:
    """Return (target, use_tls or None if unspecified, token from URL)."""
    if "://" not in addr:
        return addr, None, None
    u = urlparse(addr)
    if u.scheme == "vibectl-server":
        tls = True
    elif u.scheme == "vibectl-server-insecure":
        tls = False
    else:
        raise SystemExit(f"error: unsupported scheme {u.scheme!r}")
    if not u.hostname:
        raise SystemExit(f"error: no host in {addr!r}")
    host = u.hostname
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{u.port or 50051}", tls, u.username or None


def rpc_error(e: grpc.RpcError) -> dict:
    out: dict = {"status": e.code().name if e.code() else "UNKNOWN"}
    try:
        out["details"] = e.details()
    except Exception:  # pragma: no cover
        pass
    try:
        md = e.trailing_metadata() or ()
        out["trailing_metadata"] = {k: v for k, v in md if not k.endswith("-bin")}
    except Exception:  # pragma: no cover
        pass
    return out


def call_metadata(call: object) -> dict:
    """Initial and trailing metadata of a finished call (text keys only)."""

    def pairs(md: object) -> dict:
        return {k: v for k, v in (md or ()) if not k.endswith("-bin")}

    return {
        "initial": pairs(call.initial_metadata()),  # type: ignore[attr-defined]
        "trailing": pairs(call.trailing_metadata()),  # type: ignore[attr-defined]
    }


def metrics_json(m: pb.ExecutionMetrics) -> dict:
    d = {
        "duration_ms": m.duration_ms,
        "retry_count": m.retry_count,
        "timestamp": m.timestamp,
    }
    for f in METRIC_OPTIONAL:
        d[f] = getattr(m, f) if m.HasField(f) else None
    d["metrics_present"] = [f for f in METRIC_OPTIONAL if m.HasField(f)]
    return d


def error_json(e: pb.ExecuteError) -> dict:
    return {
        "error_code": e.error_code,
        "error_message": e.error_message,
        "error_details": e.error_details if e.HasField("error_details") else None,
    }


def server_info_json(r: pb.GetServerInfoResponse) -> dict:
    models = []
    for m in r.available_models:
        models.append(
            {
                "model_id": m.model_id,
                "display_name": m.display_name,
                "provider": m.provider,
                "supports_streaming": m.supports_streaming,
                "max_context_length": m.max_context_length
                if m.HasField("max_context_length")
                else None,
                "aliases": list(m.aliases),
            }
        )
    return {
        "server_name": r.server_name,
        "server_version": r.server_version,
        "default_model": r.default_model,
        "models": [m["model_id"] for m in models],
        "available_models": models,
        "model_aliases": dict(r.model_aliases),
        "has_limits": r.HasField("limits"),
        "limits": {f: getattr(r.limits, f) for f in LIMIT_FIELDS if r.limits.HasField(f)},
    }


def make_request(args: argparse.Namespace, model: str | None) -> pb.ExecuteRequest:
    req = pb.ExecuteRequest(request_id=str(uuid.uuid4()))
    if model:
        req.model_name = model
    if args.system:
        req.system_fragments.append(args.system)
    req.user_fragments.append(args.prompt)
    return req


def main() -> int:
    p = argparse.ArgumentParser(description="vibectl 0.11.6 raw-stub interop driver")
    p.add_argument("addr")
    p.add_argument("--token")
    p.add_argument("--tls-ca")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--server-name")
    p.add_argument(
        "--mode",
        default="full",
        choices=["full", "info", "execute", "stream", "no-token", "bad-token", "auth"],
    )
    p.add_argument("--model", default=None, help="model_name to send (default: none = server default)")
    p.add_argument("--prompt", default="Say hello.")
    p.add_argument("--system", default=None)
    p.add_argument("--unknown-model", default="no-such-model-xyz")
    p.add_argument("--expect-error", default=None, metavar="CODE")
    p.add_argument("--bad-token", default="not.a.valid-jwt")
    p.add_argument("--expect-status", default="UNAUTHENTICATED")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()

    target, url_tls, url_token = parse_addr(args.addr)
    token = args.token or url_token or os.environ.get("VIBECTL_JWT_TOKEN")
    use_tls = bool(args.tls_ca or args.tls or url_tls)

    if use_tls:
        roots = None
        if args.tls_ca:
            with open(args.tls_ca, "rb") as f:
                roots = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=roots)
        options = list(TLS_OPTIONS)
        if args.server_name:
            options.append(("grpc.ssl_target_name_override", args.server_name))
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target)
    stub = pb_grpc.VibectlLLMProxyStub(channel)

    out: dict = {"target": target, "tls": use_tls, "mode": args.mode, "rpc_errors": {}}
    checks: list[str] = []

    # ------------------------------------------------------------ auth modes
    if args.mode in ("no-token", "bad-token", "auth"):
        variants: list[tuple[str, list]] = []
        if args.mode in ("no-token", "auth"):
            variants.append(("no-token", []))
        if args.mode in ("bad-token", "auth"):
            variants.append(("bad-token", [("authorization", f"Bearer {args.bad_token}")]))
        if args.mode == "auth":
            variants.append(
                ("wrong-scheme", [("authorization", f"Basic {token or 'dXNlcjpwdw=='}")])
            )
        results: dict = {}
        for name, md in variants:
            r: dict = {}
            for rpc in ("GetServerInfo", "Execute", "StreamExecute"):
                try:
                    if rpc == "GetServerInfo":
                        stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=md, timeout=args.timeout)
                    elif rpc == "Execute":
                        stub.Execute(make_request(args, args.model), metadata=md, timeout=args.timeout)
                    else:
                        for _ in stub.StreamExecute(make_request(args, args.model), metadata=md, timeout=args.timeout):
                            pass
                    r[rpc] = "OK"
                except grpc.RpcError as e:
                    r[rpc] = e.code().name
                    out["rpc_errors"][f"{name}/{rpc}"] = rpc_error(e)
                if r[rpc] != args.expect_status:
                    checks.append(f"{name}/{rpc}: got {r[rpc]}, want {args.expect_status}")
            results[name] = r
        out["results"] = results
        out["checks"] = checks
        out["ok"] = not checks
        emit(out)
        return 0 if out["ok"] else 1

    md = [("authorization", f"Bearer {token}")] if token else []
    out["sent_token"] = bool(token)

    # ------------------------------------------------------------ GetServerInfo
    if args.mode in ("full", "info"):
        try:
            info, call = stub.GetServerInfo.with_call(
                pb.GetServerInfoRequest(), metadata=md, timeout=args.timeout
            )
            out["server_info"] = server_info_json(info)
            out["server_info"]["response_metadata"] = call_metadata(call)
        except grpc.RpcError as e:
            out["rpc_errors"]["GetServerInfo"] = rpc_error(e)
            checks.append(f"GetServerInfo: {e.code().name}")

    # ------------------------------------------------------------ Execute
    if args.mode in ("full", "execute"):
        req = make_request(args, args.model)
        ex: dict = {"request_id_sent": req.request_id}
        try:
            resp, call = stub.Execute.with_call(req, metadata=md, timeout=args.timeout)
            ex["response_metadata"] = call_metadata(call)
            ex["request_id"] = resp.request_id
            ex["request_id_echoed"] = resp.request_id == req.request_id
            kind = resp.WhichOneof("result")
            ex["result"] = kind
            if kind == "success":
                ex["response_text"] = resp.success.response_text
                ex["actual_model_used"] = resp.success.actual_model_used
                ex["has_metrics"] = resp.success.HasField("metrics")
                ex["metrics"] = metrics_json(resp.success.metrics)
            elif kind == "error":
                ex["error"] = error_json(resp.error)
            if not ex["request_id_echoed"]:
                checks.append("Execute: request_id not echoed")
            if args.expect_error:
                if kind != "error" or resp.error.error_code != args.expect_error:
                    checks.append(f"Execute: want error {args.expect_error}, got {kind}")
            elif kind != "success":
                checks.append(f"Execute: result {kind}")
        except grpc.RpcError as e:
            out["rpc_errors"]["Execute"] = rpc_error(e)
            checks.append(f"Execute: {e.code().name}")
        out["execute"] = ex

    # ------------------------------------------------------------ StreamExecute
    if args.mode in ("full", "stream"):
        req = make_request(args, args.model)
        st: dict = {"request_id_sent": req.request_id, "chunk_kinds": []}
        text: list[str] = []
        ids = set()
        try:
            call = stub.StreamExecute(req, metadata=md, timeout=args.timeout)
            for chunk in call:
                kind = chunk.WhichOneof("chunk_type")
                st["chunk_kinds"].append(kind)
                ids.add(chunk.request_id)
                if kind == "text_chunk":
                    text.append(chunk.text_chunk)
                elif kind == "complete":
                    st["actual_model_used"] = chunk.complete.actual_model_used
                elif kind == "final_metrics":
                    st["final_metrics"] = metrics_json(chunk.final_metrics)
                elif kind == "error":
                    st["error"] = error_json(chunk.error)
            st["response_metadata"] = call_metadata(call)
        except grpc.RpcError as e:
            out["rpc_errors"]["StreamExecute"] = rpc_error(e)
            checks.append(f"StreamExecute: {e.code().name}")
        st["text"] = "".join(text)
        st["text_chunk_count"] = len(text)
        st["request_ids_echoed"] = ids == {req.request_id}
        # Collapse runs of text_chunk for an easy order check.
        collapsed: list[str] = []
        for k in st["chunk_kinds"]:
            if not (collapsed and collapsed[-1] == k == "text_chunk"):
                collapsed.append(k)
        st["order"] = collapsed
        if "StreamExecute" not in out["rpc_errors"]:
            if not st["request_ids_echoed"]:
                checks.append("StreamExecute: request_id not echoed on every chunk")
            if args.expect_error:
                if st["chunk_kinds"] != ["error"] or st["error"]["error_code"] != args.expect_error:
                    checks.append(f"StreamExecute: want single error {args.expect_error}, got {collapsed}")
            elif collapsed not in (
                ["text_chunk", "complete", "final_metrics"],
                ["complete", "final_metrics"],
            ):
                checks.append(f"StreamExecute: order {collapsed}")
        out["stream"] = st

    # ------------------------------------------------------------ unknown model
    if args.mode == "full":
        req = make_request(args, args.unknown_model)
        try:
            resp = stub.Execute(req, metadata=md, timeout=args.timeout)
            kind = resp.WhichOneof("result")
            out["execute_unknown_model"] = {
                "model": args.unknown_model,
                "result": kind,
                **({"error": error_json(resp.error)} if kind == "error" else {}),
            }
            if kind != "error":
                checks.append("Execute(unknown model): expected an in-band error")
        except grpc.RpcError as e:
            out["rpc_errors"]["Execute(unknown model)"] = rpc_error(e)
            checks.append(f"Execute(unknown model): {e.code().name} (want OK + in-band error)")

    channel.close()
    out["checks"] = checks
    out["ok"] = not checks
    emit(out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
