#!/usr/bin/env python3
"""Write and read audit logs with vibectl 0.11.6's own code.

Usage (venv python from scripts/setup-python-peer):

  audit_log.py write PATH PROFILE   # 0.11.6's AuditLogger appends one entry of each event
                                    # type, the llm_request one with what 0.11.6's own
                                    # RequestSanitizer found in a request holding a JWT
  audit_log.py read PATH            # 0.11.6's AuditLogger.get_audit_entries over PATH

`write` prints {"ok": true, "request_ids": [...], "secrets_types": [...]}; `read` prints
{"ok": true, "entries": [...]}. Hermetic (see _hermetic.py).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hermetic import emit, isolate, quiet_logging  # noqa: E402

isolate()

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwZWVyLWF1ZGl0In0.cGVlci1zaWduYXR1cmUtMDAwMDAx"


def main() -> int:
    p = argparse.ArgumentParser(description="audit logs with vibectl 0.11.6's code")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("path")
    w.add_argument("profile")
    r = sub.add_parser("read")
    r.add_argument("path")
    args = p.parse_args()
    quiet_logging()

    from vibectl.security.audit import AuditLogger
    from vibectl.security.config import SecurityConfig
    from vibectl.security.sanitizer import RequestSanitizer

    if args.cmd == "write":
        cfg = SecurityConfig(audit_log_path=args.path)
        log = AuditLogger(cfg, proxy_profile=args.profile)
        request = f"Summarize: GET /api Authorization: Bearer {JWT}"
        sanitized, found = RequestSanitizer(cfg).sanitize_request(request)
        log.log_llm_request(
            request_id="peer-llm-1",
            request_content=sanitized,
            response_content="All good.",
            secrets_detected=found,
            command_generated="kubectl get pods",
            user_approved=True,
            model_used="gpt-4o",
        )
        log.log_sanitization_event(
            request_id="peer-san-1",
            secrets_detected=found,
            original_content=request,
            sanitized_content=sanitized,
        )
        log.log_proxy_connection(
            server_url="vibectl-server://llm.example.com:443",
            success=False,
            error_message="connection refused",
            connection_time_ms=12.5,
        )
        entries = log.get_audit_entries()
        emit(
            {
                "ok": True,
                "request_ids": [e["request_id"] for e in entries],
                "secrets_types": [s.secret_type for s in found],
            }
        )
        return 0

    cfg = SecurityConfig(audit_log_path=args.path)
    entries = AuditLogger(cfg, proxy_profile="any").get_audit_entries()
    emit({"ok": True, "entries": entries})
    return 0


if __name__ == "__main__":
    sys.exit(main())
