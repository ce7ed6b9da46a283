"""avs_agent against the REAL agent and emulator (run under ../testing/harness.sh, which exports
AVS_PAIR_SOCKET, AVS_PAIR_AGENT_BIN, AVS_PAIR_EMULATOR, AVS_PAIR_CTL); a few cases need no agent.

    device-agent/clients/testing/harness.sh run -- python3 -m unittest discover -s device-agent/clients/python/tests
"""
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import avs_agent  # noqa: E402

SOCKET = os.environ.get("AVS_PAIR_SOCKET")
needs_agent = unittest.skipUnless(SOCKET, "needs the agent: run under clients/testing/harness.sh")


def eventually(pred, within=15.0):
    """Polls the agent's own answers until pred() holds, with a deadline."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def cli_token():
    return subprocess.run(
        [os.environ["AVS_PAIR_AGENT_BIN"], "token", "--socket", SOCKET],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


@needs_agent
class AgainstTheAgent(unittest.TestCase):
    def setUp(self):
        self.client = avs_agent.Client(SOCKET)
        # Each test starts from a paired agent with a token.
        self.assertTrue(eventually(lambda: self.client.status()["auth_state"] == "REFRESHED"))

    def test_token_is_the_agents(self):
        tok = self.client.token()
        self.assertTrue(tok.startswith("Atza|"))
        self.assertEqual(tok, cli_token())
        self.assertEqual(avs_agent.token(SOCKET), tok)
        self.assertGreater(self.client.token_info()["expires_in_secs"], 0)

    def test_status(self):
        st = avs_agent.status(SOCKET)
        self.assertTrue(st["paired"])
        self.assertEqual(st["auth_state"], "REFRESHED")
        self.assertIn("refreshes", st)

    def test_subscribe_yields_current_state_at_once(self):
        sub = avs_agent.subscribe(SOCKET, timeout=5)
        try:
            self.assertEqual(next(sub), avs_agent.AuthState("REFRESHED", "SUCCESS"))
        finally:
            sub.close()

    def test_report_auth_failure_refreshes_once(self):
        old = self.client.token()
        before = self.client.status()["refreshes"]
        threads = [threading.Thread(target=avs_agent.report_auth_failure, args=(old, SOCKET)) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertTrue(eventually(lambda: self.client.token() != old))
        self.client.report_auth_failure(old)  # stale by now: ignored
        self.assertEqual(self.client.status()["refreshes"], before + 1)

    def test_example_pings_avs(self):
        # The emulator stands in for AVS: its /ping checks the token like AVS does.
        r = subprocess.run(
            [sys.executable, os.path.join(HERE, "..", "examples", "ping_avs.py"),
             "--avs", os.environ["AVS_PAIR_EMULATOR"], "--socket", SOCKET],
            capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("HTTP 204", r.stdout)

    def test_subscribe_sees_the_agent_forget_the_account(self):
        # Unlinks, then pairs again at the end for the tests after it.
        sub = avs_agent.subscribe(SOCKET, timeout=10)
        try:
            self.assertEqual(next(sub).state, "REFRESHED")
            self.client.request("reset", "ok")
            self.assertEqual(next(sub).state, "UNINITIALIZED")
        finally:
            sub.close()
        with self.assertRaises(avs_agent.AgentError) as e:
            self.client.token()
        self.assertNotIsInstance(e.exception, avs_agent.AgentUnavailable)
        # Pair again for whatever runs next.
        subprocess.run(["bash", os.environ["AVS_PAIR_CTL"], "pair"], check=True)

    def test_z_agent_restart_ends_subscription(self):
        sub = avs_agent.subscribe(SOCKET, timeout=30)
        self.assertEqual(next(sub).state, "REFRESHED")
        subprocess.run(["bash", os.environ["AVS_PAIR_CTL"], "restart"], check=True)
        with self.assertRaises(avs_agent.AgentUnavailable):
            next(sub)
        self.assertTrue(eventually(lambda: self.client.status()["auth_state"] == "REFRESHED"))


@contextlib.contextmanager
def stand_in_agent(*handlers):
    """A stand-in agent on a Unix socket in a temp dir: a thread accepts one connection per
    handler, reads its request and passes the connection to that handler. Yields the socket's path;
    afterwards waits (5 s at most) for the thread and closes the socket."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(len(handlers))

        def serve():
            for handle in handlers:
                conn, _ = srv.accept()
                with conn:
                    conn.recv(4096)
                    handle(conn)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            yield path
        finally:
            t.join(5)
            srv.close()


def answer(data):
    """A stand_in_agent handler that sends `data` and hangs up."""
    return lambda conn: conn.sendall(data)


class WithoutTheAgent(unittest.TestCase):
    def test_no_agent_is_unavailable(self):
        t0 = time.monotonic()
        with self.assertRaises(avs_agent.AgentUnavailable):
            avs_agent.token("/nonexistent/avs-agent.sock")
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_extra_fields_and_error_kind(self):
        """A newer agent's answers (unknown fields, an error kind) are tolerated."""
        with stand_in_agent(
            answer(b'{"type":"token","access_token":"Atza|x","expires_in_secs":5,"new_field":{"a":1}}\n'),
            answer(b'{"type":"error","message":"no valid access token","kind":"not_paired","hint":"pair"}\n'),
            answer(b'{"type":"progress","x":1}\n{"type":"auth_state","state":"REFRESHED","error":"SUCCESS","since":3}\n'),
        ) as path:
            c = avs_agent.Client(path)
            self.assertEqual(c.token(), "Atza|x")
            with self.assertRaises(avs_agent.AgentError) as e:
                c.token()
            self.assertEqual(e.exception.kind, "not_paired")
            self.assertEqual(next(c.subscribe(timeout=5)), avs_agent.AuthState("REFRESHED", "SUCCESS"))

    def test_oversize_answer_is_refused(self):
        def too_long(conn):
            try:
                conn.sendall(b"x" * (avs_agent.MAX_LINE + 10))
                conn.recv(1)  # stays open until the client gives up
            except OSError:
                pass

        with stand_in_agent(too_long) as path:
            with self.assertRaises(avs_agent.AgentError) as e:
                avs_agent.Client(path, timeout=2).token()
            self.assertNotIsInstance(e.exception, avs_agent.AgentUnavailable)
            self.assertIn("longer than", e.exception.message)


if __name__ == "__main__":
    unittest.main()
