#!/usr/bin/env python3
"""Calls AVS /ping with the agent's token (requests), reporting a 403 back to the agent.

    python3 ping_avs.py [--avs https://avs-alexa-na.amazon.com] [--socket PATH]

This is the whole contract for a Python AVS client: ask the agent for the token right before each
request, and tell it when AVS refuses one (it refreshes once, however many report it).
"""
import argparse
import os
import sys

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import avs_agent  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--avs", default=os.environ.get("AVS_BASE_URL", "https://avs-alexa-na.amazon.com"))
    p.add_argument("--socket", default=None, help="the agent's socket (default: the system one)")
    args = p.parse_args()
    client = avs_agent.Client(args.socket)
    try:
        token = client.token()
    except avs_agent.AgentError as e:
        print(f"no token from the agent: {e}", file=sys.stderr)
        return 2
    r = requests.get(f"{args.avs.rstrip('/')}/ping", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if r.status_code == 403:
        client.report_auth_failure(token)
        print("AVS refused the token (403); the agent is refreshing it", file=sys.stderr)
        return 1
    print(f"AVS /ping: HTTP {r.status_code}")
    return 0 if r.status_code in (200, 204) else 1


if __name__ == "__main__":
    sys.exit(main())
