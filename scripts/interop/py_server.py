#!/usr/bin/env python3
"""Run vibectl 0.11.6's own `vibectl-server` hermetically, backed by the mock.

For tests of OUR client against THEIR server. Run with the venv python of
scripts/setup-python-peer (it finds `vibectl-server` next to sys.executable):

  py_server.py [--secret S] [--no-auth] [--tls] [--port 0]
               [--default-model mock-gpt | --no-default-model]
               [--reply TEXT] [--chunk-size 8] [--delay-ms 0]
               [--limit KEY=N ...] [--alias ALIAS=MODEL ...]
               [--secret-via env|config] [--exit-on-stdin-eof]
               [--workdir DIR] [--keep]

What it does (everything under one temp work dir W, nothing leaves
127.0.0.1):
  1. starts scripts/interop/mini_openai_mock.py on a free port;
  2. writes W/llm/extra-openai-models.yaml (LLM_USER_PATH=W/llm) declaring
     models mock-gpt (alias "mock"), mock-error and mock-slow, all with
     api_base http://127.0.0.1:<mock>/v1 (so no API key is needed);
  3. writes the server config to W/home/.config/vibectl/server/config.yaml
     (HOME=W/home). That path matters: 0.11.6 reads jwt settings from
     $HOME/.config/vibectl/server/config.yaml whatever --config says;
  4. with TLS, makes a self-signed cert for localhost/127.0.0.1/::1 with
     `vibectl-server generate-certs` (W/tls/server.crt is also the CA bundle);
  5. runs `vibectl-server serve --config <that file>` with env
     HOME=W/home LLM_USER_PATH=W/llm VIBECTL_JWT_SECRET=<secret>
     (stdout+stderr to W/server.log), waits until GetServerInfo answers.
     With --secret-via config the secret is written as jwt.secret_key into
     that config file instead, and VIBECTL_JWT_SECRET is not set for the
     server (the route an operator sharing one secret between two servers
     takes);
  6. mints a 30-day token for sub "interop" with 0.11.6's JWTAuthManager and
     writes it to W/token.jwt.
Then prints ONE JSON line on stdout and keeps running until SIGTERM/SIGINT
(or until the server dies: exit 1), then stops both children and removes W
(unless --keep or --workdir was given):

  {"pid", "port", "addr", "url", "url_with_token", "token", "token_path",
   "secret", "tls", "ca_bundle", "auth", "default_model", "mock_port",
   "mock_log", "server_log", "config_path", "workdir"}

--exit-on-stdin-eof: also stop everything when stdin reaches EOF (a test
harness holds the pipe; if the harness dies, nothing is left running).

--limit KEY=N sets server.limits.global.KEY (0.11.6 only reports these in
GetServerInfo; it never enforces them). --alias ALIAS=MODEL adds a
top-level model_aliases entry (reported in GetServerInfo.model_aliases).
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def yaml_scalar(v: object) -> str:
    return json.dumps(v)  # JSON scalars are valid YAML


def main() -> int:
    p = argparse.ArgumentParser(description="run vibectl 0.11.6's server hermetically")
    p.add_argument("--secret", default=None)
    p.add_argument("--no-auth", action="store_true")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--default-model", default="mock-gpt")
    p.add_argument("--no-default-model", action="store_true")
    p.add_argument("--reply", default=None)
    p.add_argument("--chunk-size", type=int, default=8)
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--limit", action="append", default=[], metavar="KEY=N")
    p.add_argument("--alias", action="append", default=[], metavar="ALIAS=MODEL")
    p.add_argument("--workdir", default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--startup-timeout", type=float, default=60.0)
    p.add_argument("--secret-via", choices=["env", "config"], default="env")
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    args = p.parse_args()

    bindir = Path(sys.executable).parent
    server_bin = bindir / "vibectl-server"
    if not server_bin.exists():
        print(f"error: {server_bin} not found (run with the vibectl 0.11.6 venv python)", file=sys.stderr)
        return 1

    own_dir = args.workdir is None
    w = Path(args.workdir or tempfile.mkdtemp(prefix="vibectl-py-server-")).resolve()
    home, llm_dir, tls_dir = w / "home", w / "llm", w / "tls"
    cfg_dir = home / ".config" / "vibectl" / "server"
    for d in (cfg_dir, llm_dir, tls_dir):
        d.mkdir(parents=True, exist_ok=True)
    secret = args.secret or secrets.token_urlsafe(32)
    port = args.port or free_port()
    children: list[subprocess.Popen] = []

    def cleanup() -> None:
        for c in reversed(children):
            if c.poll() is None:
                c.terminate()
        for c in reversed(children):
            try:
                c.wait(timeout=10)
            except subprocess.TimeoutExpired:
                c.kill()
        if own_dir and not args.keep:
            shutil.rmtree(w, ignore_errors=True)

    def on_signal(signum: int, frame: object) -> None:
        cleanup()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.exit_on_stdin_eof:
        import threading

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except Exception:
                pass
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch_stdin, daemon=True).start()

    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(home),
        "LLM_USER_PATH": str(llm_dir),
        "NO_PROXY": "*",
        "no_proxy": "*",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "300",
        "TERM": "dumb",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }

    try:
        # 1. mock
        mock_log = w / "mock-requests.jsonl"
        mock_cmd = [sys.executable, str(HERE / "mini_openai_mock.py"), "--log", str(mock_log),
                    "--chunk-size", str(args.chunk_size), "--delay-ms", str(args.delay_ms)]
        if args.reply is not None:
            mock_cmd += ["--reply", args.reply]
        mock = subprocess.Popen(mock_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=env, text=True)
        children.append(mock)
        line = mock.stdout.readline() if mock.stdout else ""
        if not line:
            raise RuntimeError("mock did not start")
        mock_port = json.loads(line)["port"]
        base = f"http://127.0.0.1:{mock_port}/v1"

        # 2. llm models
        (llm_dir / "extra-openai-models.yaml").write_text(
            f"""- model_id: mock-gpt
  model_name: mock-gpt
  api_base: "{base}"
  aliases: ["mock"]
- model_id: mock-error
  model_name: mock-error
  api_base: "{base}"
- model_id: mock-slow
  model_name: mock-slow
  api_base: "{base}"
"""
        )

        # 4. TLS material (before the config, which names the files)
        cert = key = None
        if args.tls:
            cert, key = tls_dir / "server.crt", tls_dir / "server.key"
            subprocess.run(
                [str(server_bin), "generate-certs", "--hostname", "localhost",
                 "--cert-file", str(cert), "--key-file", str(key), "--force"],
                env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )

        # 3. server config
        default_model = None if args.no_default_model else args.default_model
        lines = [
            "server:",
            "  host: 127.0.0.1",
            f"  port: {port}",
            f"  default_model: {yaml_scalar(default_model)}",
            "  log_level: INFO",
        ]
        limits = [kv.split("=", 1) for kv in args.limit]
        if limits:
            lines += ["  limits:", "    global:"]
            lines += [f"      {k}: {int(v)}" for k, v in limits]
        lines += ["jwt:", f"  enabled: {'false' if args.no_auth else 'true'}"]
        if args.secret_via == "config":
            lines += [f"  secret_key: {yaml_scalar(secret)}"]
        if args.tls:
            lines += ["tls:", "  enabled: true", f"  cert_file: {yaml_scalar(str(cert))}",
                      f"  key_file: {yaml_scalar(str(key))}"]
        else:
            lines += ["tls:", "  enabled: false"]
        if args.alias:
            lines += ["model_aliases:"]
            lines += [f"  {yaml_scalar(a)}: {yaml_scalar(m)}" for a, m in
                      (kv.split("=", 1) for kv in args.alias)]
        config_path = cfg_dir / "config.yaml"
        config_path.write_text("\n".join(lines) + "\n")

        # 6. token (0.11.6's own code, same secret)
        os.environ["VIBECTL_JWT_SECRET"] = secret
        for k in ("VIBECTL_JWT_SECRET_FILE", "VIBECTL_JWT_ISSUER", "VIBECTL_JWT_ALGORITHM",
                  "VIBECTL_JWT_EXPIRATION_DAYS"):
            os.environ.pop(k, None)
        os.environ["HOME"] = str(home)
        os.environ["LLM_USER_PATH"] = str(llm_dir)
        import warnings

        warnings.filterwarnings("ignore", message=".*HMAC key.*")
        import logging

        from vibectl.server.jwt_auth import JWTAuthManager, load_config_from_server

        logging.getLogger("vibectl").setLevel(logging.CRITICAL)
        token = JWTAuthManager(load_config_from_server(server_config={})).generate_token(
            "interop", expiration_days=30
        )
        token_path = w / "token.jwt"
        token_path.write_text(token)

        # 5. server
        server_log = w / "server.log"
        senv = dict(env, VIBECTL_JWT_SECRET=secret) if args.secret_via == "env" else dict(env)
        with open(server_log, "w") as log:
            server = subprocess.Popen(
                [str(server_bin), "serve", "--config", str(config_path)],
                env=senv, stdout=log, stderr=subprocess.STDOUT, cwd=str(w),
            )
        children.append(server)

        import grpc

        from vibectl.proto import llm_proxy_pb2 as pb
        from vibectl.proto import llm_proxy_pb2_grpc as pb_grpc

        if args.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())  # type: ignore[union-attr]
            channel = grpc.secure_channel(f"localhost:{port}", creds)
        else:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.VibectlLLMProxyStub(channel)
        md = [] if args.no_auth else [("authorization", f"Bearer {token}")]
        deadline = time.monotonic() + args.startup_timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"vibectl-server exited with {server.returncode}; see {server_log}")
            # Ready means the models are listed, not just an answer: 0.11.6 loads the `llm`
            # plugins on first use behind a flag it sets before loading them (llm/plugins.py
            # `_loaded`), so under load a call that arrives while a first, timed-out probe is
            # still loading them gets an empty model list.
            try:
                info = stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=md, timeout=2)
                if any(m.model_id == "mock-gpt" for m in info.available_models):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"vibectl-server lists no mock-gpt after {args.startup_timeout}s; see {server_log}")
                time.sleep(0.2)
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"vibectl-server not ready after {args.startup_timeout}s; see {server_log}")
                time.sleep(0.2)
        channel.close()

        host = "localhost" if args.tls else "127.0.0.1"
        scheme = "vibectl-server" if args.tls else "vibectl-server-insecure"
        print(json.dumps({
            "pid": server.pid,
            "port": port,
            "addr": f"{host}:{port}",
            "url": f"{scheme}://{host}:{port}",
            "url_with_token": f"{scheme}://{token}@{host}:{port}",
            "token": token,
            "token_path": str(token_path),
            "secret": secret,
            "secret_via": args.secret_via,
            "tls": args.tls,
            "ca_bundle": str(cert) if cert else None,
            "auth": not args.no_auth,
            "default_model": default_model,
            "mock_port": mock_port,
            "mock_log": str(mock_log),
            "server_log": str(server_log),
            "config_path": str(config_path),
            "workdir": str(w),
        }), flush=True)

        while server.poll() is None:
            time.sleep(0.5)
        print(f"error: vibectl-server exited with {server.returncode}; see {server_log}", file=sys.stderr)
        return 1
    except Exception as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
