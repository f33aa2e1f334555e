"""Shared helpers for the interop drivers. Import BEFORE anything from vibectl.

`isolate()` points every directory vibectl 0.11.6 (and the `llm` library it
imports) might read or write at a fresh temporary directory, so a driver never
sees or changes the user's real config:

  HOME, XDG_CONFIG_HOME          -> $TMP/home, $TMP/home/.config
  VIBECTL_CLIENT_CONFIG_DIR      -> $TMP/client   (client config.yaml)
  VIBECTL_SERVER_CONFIG_DIR      -> $TMP/server
  LLM_USER_PATH                  -> $TMP/llm      (unless keep_llm_user_path)
  VIBECTL_CONFIG_DIR, VIBECTL_JWT_SECRET[_FILE], VIBECTL_JWT_ISSUER,
  VIBECTL_JWT_ALGORITHM, VIBECTL_JWT_EXPIRATION_DAYS   -> removed
  VIBECTL_JWT_TOKEN, VIBECTL_CA_BUNDLE                 -> removed unless kept

The directory is removed at exit unless INTEROP_KEEP_TMP=1.
"""

import atexit
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

_DROP = [
    "VIBECTL_CONFIG_DIR",
    "VIBECTL_JWT_SECRET",
    "VIBECTL_JWT_SECRET_FILE",
    "VIBECTL_JWT_ISSUER",
    "VIBECTL_JWT_ALGORITHM",
    "VIBECTL_JWT_EXPIRATION_DAYS",
]


def isolate(
    keep: tuple[str, ...] = (), keep_llm_user_path: bool = False
) -> Path:
    if "vibectl" in sys.modules:
        raise RuntimeError("isolate() must run before importing vibectl")
    tmp = Path(tempfile.mkdtemp(prefix="vibectl-interop-"))
    if os.environ.get("INTEROP_KEEP_TMP") != "1":
        atexit.register(shutil.rmtree, tmp, True)
    home = tmp / "home"
    (home / ".config").mkdir(parents=True)
    for sub in ("client", "server", "llm"):
        (tmp / sub).mkdir()
    os.environ["HOME"] = str(home)
    os.environ["XDG_CONFIG_HOME"] = str(home / ".config")
    os.environ["VIBECTL_CLIENT_CONFIG_DIR"] = str(tmp / "client")
    os.environ["VIBECTL_SERVER_CONFIG_DIR"] = str(tmp / "server")
    if not keep_llm_user_path or not os.environ.get("LLM_USER_PATH"):
        os.environ["LLM_USER_PATH"] = str(tmp / "llm")
    for name in _DROP + ["VIBECTL_JWT_TOKEN", "VIBECTL_CA_BUNDLE"]:
        if name not in keep:
            os.environ.pop(name, None)
    # Never let a test reach a real network proxy.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "grpc_proxy", "GRPC_PROXY", "all_proxy", "ALL_PROXY"):
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "*"
    # PyJWT >= 2.10 warns about HMAC keys shorter than 32 bytes; tests use
    # short secrets on purpose and stdout/stderr must stay clean.
    warnings.filterwarnings("ignore", message=".*HMAC key.*")
    return tmp


def emit(obj: Any) -> None:
    """Print one JSON document on stdout."""
    print(json.dumps(obj, indent=2, sort_keys=True, default=str), flush=True)


def quiet_logging() -> None:
    """Keep vibectl's log chatter off stdout/stderr (stdout is our JSON)."""
    import logging

    logging.getLogger("vibectl").setLevel(logging.CRITICAL)
    logging.getLogger().setLevel(logging.CRITICAL)
