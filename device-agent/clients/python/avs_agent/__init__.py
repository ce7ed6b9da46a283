"""Client for avs-device-agent's local API (standard library only).

The agent on the speaker holds the Login with Amazon account and keeps an access token fresh.
Programs on the speaker ask it for the token over a Unix socket that speaks one JSON object per
line each way: requests carry ``"op"``, answers ``"type"``. Reading the socket needs membership
in the ``avs-agent`` group (the socket is 0660).

    import avs_agent
    token = avs_agent.token()                      # "Atza|…", fresh
    for state in avs_agent.subscribe():            # AuthState(state="REFRESHED", error="SUCCESS")
        ...
    avs_agent.report_auth_failure(token)           # AVS answered 403: the agent refreshes once

Answers may carry fields this module does not know (newer agents add some, e.g. an error
``kind``); they are kept in the returned dicts and otherwise ignored.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Dict, Iterator, NamedTuple, Optional

__all__ = [
    "AgentError",
    "AgentUnavailable",
    "AuthState",
    "Client",
    "DEFAULT_SOCKET",
    "MAX_LINE",
    "report_auth_failure",
    "status",
    "subscribe",
    "token",
]

#: Where the systemd unit puts the socket; ``AVS_AGENT_SOCKET_PATH`` overrides it.
DEFAULT_SOCKET = "/run/avs-device-agent/agent.sock"
#: Longest line either side sends (the agent's own cap).
MAX_LINE = 16 * 1024


class AgentError(Exception):
    """The agent answered with an error (``message``; ``kind`` when the agent gives one)."""

    def __init__(self, message: str, kind: Optional[str] = None, answer: Optional[dict] = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.answer = answer or {}


class AgentUnavailable(AgentError):
    """No agent at the socket, no permission to use it, or it did not answer in time."""


class AuthState(NamedTuple):
    """The AVS Device SDK's state and error names, as the agent reports them."""

    state: str
    error: str


def _default_socket() -> str:
    return os.environ.get("AVS_AGENT_SOCKET_PATH") or DEFAULT_SOCKET


class _Connection:
    """One socket connection with bounded line reads."""

    def __init__(self, path: str, timeout: Optional[float]):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._buf = bytearray()
        try:
            self._sock.connect(path)
        except OSError as e:
            self._sock.close()
            raise AgentUnavailable(
                f"cannot connect to the agent at {path}: {e.strerror or e} "
                "(is avs-device-agent running, and is this user in its group?)"
            ) from None

    def send(self, request: Dict[str, Any]) -> None:
        line = bytearray(json.dumps(request, separators=(",", ":")).encode() + b"\n")
        try:
            self._sock.sendall(line)
        except OSError as e:
            raise AgentUnavailable(f"the agent went away: {e}") from None
        finally:
            line[:] = b"\0" * len(line)

    def read(self) -> Optional[Dict[str, Any]]:
        """The next answer, or None when the agent closed the connection."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl])
                self._buf[: nl + 1] = b""
                if nl > MAX_LINE:
                    raise AgentError(f"answer longer than {MAX_LINE} bytes")
                break
            if len(self._buf) > MAX_LINE:
                raise AgentError(f"answer longer than {MAX_LINE} bytes")
            try:
                chunk = self._sock.recv(4096)
            except socket.timeout:
                raise AgentUnavailable("the agent did not answer in time") from None
            except OSError as e:
                raise AgentUnavailable(f"the agent went away: {e}") from None
            if not chunk:
                return None
            self._buf += chunk
        try:
            answer = json.loads(raw)
        except ValueError:
            raise AgentError("the agent's answer is not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("type"), str):
            raise AgentError("the agent's answer has no type")
        return answer

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "_Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _check(answer: Optional[Dict[str, Any]], expected: str) -> Dict[str, Any]:
    if answer is None:
        raise AgentUnavailable("the agent closed the connection without answering")
    if answer["type"] == "error":
        msg = answer.get("message")
        kind = answer.get("kind")
        raise AgentError(
            msg if isinstance(msg, str) else "error",
            kind if isinstance(kind, str) else None,
            answer,
        )
    if answer["type"] != expected:
        raise AgentError(f"unexpected answer type {answer['type']!r} (wanted {expected!r})", answer=answer)
    return answer


class Client:
    """The agent's local API. Each call opens a short connection; nothing is cached."""

    def __init__(self, socket_path: Optional[str] = None, timeout: float = 5.0):
        self.socket_path = socket_path or _default_socket()
        self.timeout = timeout

    def request(self, op: str, expected: str, **fields: Any) -> Dict[str, Any]:
        """Sends ``{"op": op, **fields}``; the first answer, which must be of type ``expected``."""
        with _Connection(self.socket_path, self.timeout) as c:
            c.send({"op": op, **fields})
            return _check(c.read(), expected)

    def token(self) -> str:
        """The current access token (raises AgentError when there is none, e.g. unpaired)."""
        return self.token_info()["access_token"]

    def token_info(self) -> Dict[str, Any]:
        """The ``token`` answer: ``access_token`` and ``expires_in_secs``."""
        answer = self.request("token", "token")
        if not isinstance(answer.get("access_token"), str):
            raise AgentError("token answer without access_token", answer=answer)
        return answer

    def status(self) -> Dict[str, Any]:
        """The agent's status: ``paired``, ``auth_state``, ``auth_error``, ``window``, …"""
        return self.request("status", "status")

    def report_auth_failure(self, token: str) -> None:
        """AVS refused ``token`` (HTTP 403): the agent refreshes at once if it is still the
        current one. Reports of an old token are ignored, so many reporters cause one refresh."""
        self.request("auth_failure", "ok", token=token)

    def subscribe(self, timeout: Optional[float] = None) -> Iterator[AuthState]:
        """Yields the auth state at once, then on every change, until the agent goes away
        (AgentUnavailable) or the generator is closed. ``timeout``: longest wait for the next
        change (None: forever)."""
        c = _Connection(self.socket_path, self.timeout)
        try:
            c.send({"op": "subscribe"})
            c._sock.settimeout(timeout)
            while True:
                answer = c.read()
                if answer is None:
                    raise AgentUnavailable("the agent closed the subscription")
                if answer["type"] == "error":
                    _check(answer, "auth_state")
                if answer["type"] != "auth_state":
                    continue
                state, error = answer.get("state"), answer.get("error")
                if isinstance(state, str):
                    yield AuthState(state, error if isinstance(error, str) else "SUCCESS")
        finally:
            c.close()


def token(socket_path: Optional[str] = None) -> str:
    """The current access token from the agent at ``socket_path`` (default: the system one)."""
    return Client(socket_path).token()


def status(socket_path: Optional[str] = None) -> Dict[str, Any]:
    """The agent's status."""
    return Client(socket_path).status()


def subscribe(socket_path: Optional[str] = None, timeout: Optional[float] = None) -> Iterator[AuthState]:
    """Auth states: the current one at once, then every change."""
    return Client(socket_path).subscribe(timeout)


def report_auth_failure(token: str, socket_path: Optional[str] = None) -> None:
    """AVS refused ``token``."""
    Client(socket_path).report_auth_failure(token)
