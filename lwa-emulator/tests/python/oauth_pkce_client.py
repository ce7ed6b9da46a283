#!/usr/bin/env python3
"""A stock OAuth 2.0 client (requests + requests-oauthlib/oauthlib from PyPI) against lwa-emulator.

Shows the emulator speaks standard OAuth 2.0, not only avs-pair's dialect: authorization code
with PKCE (S256) through the real sign-in and consent pages, the code exchange, a profile call
with the bearer token, and a refresh.

Usage: oauth_pkce_client.py BASE_URL CLIENT_ID REDIRECT_URI PRODUCT_ID EMAIL PASSWORD
Prints one JSON line with the outcome; exits non-zero on any failure.
"""

import json
import os
import sys
from html.parser import HTMLParser
from urllib.parse import urljoin

# oauthlib insists on https; the emulator here is plain http on loopback only.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from requests_oauthlib import OAuth2Session  # noqa: E402

TIMEOUT = 10


class FormParser(HTMLParser):
    """Collects one form (by id): its action and its named inputs."""

    def __init__(self, form_id):
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.action = None
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
            self.action = attrs.get("action")
        elif tag == "input" and self.inside and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False


def form(html, form_id):
    parser = FormParser(form_id)
    parser.feed(html)
    if parser.action is None:
        raise SystemExit(f"no form {form_id!r} on the page")
    return parser.action, parser.fields


def main():
    base, client_id, redirect_uri, product_id, email, password = sys.argv[1:7]
    token_url = base + "/auth/o2/token"
    oauth = OAuth2Session(client_id, redirect_uri=redirect_uri, scope=["alexa:all"], pkce="S256")
    scope_data = json.dumps(
        {"alexa:all": {"productID": product_id,
                       "productInstanceAttributes": {"deviceSerialNumber": "PY-0001"}}},
        separators=(",", ":"),
    )
    authorization_url, state = oauth.authorization_url(base + "/ap/oa", scope_data=scope_data)
    assert "code_challenge_method=S256" in authorization_url, authorization_url

    # The browser: a requests.Session keeps the sign-in cookie like a browser would.
    browser = requests.Session()
    page = browser.get(authorization_url, timeout=TIMEOUT)
    page.raise_for_status()
    action, fields = form(page.text, "signin-form")
    fields.update(email=email, password=password)
    consent = browser.post(urljoin(page.url, action), data=fields, timeout=TIMEOUT)
    consent.raise_for_status()
    action, fields = form(consent.text, "consent-form")
    fields["decision"] = "allow"
    redirect = browser.post(urljoin(consent.url, action), data=fields,
                            allow_redirects=False, timeout=TIMEOUT)
    assert redirect.status_code == 302, redirect.status_code
    location = redirect.headers["Location"]
    assert location.startswith(redirect_uri), location

    # oauthlib checks state, sends code + code_verifier + client_id.
    token = oauth.fetch_token(token_url, authorization_response=location,
                              include_client_id=True, timeout=TIMEOUT)
    assert token["token_type"].lower() == "bearer", token["token_type"]
    assert token["access_token"].startswith("Atza|")
    assert token["refresh_token"].startswith("Atzr|")

    profile = oauth.get(base + "/user/profile", timeout=TIMEOUT)
    profile.raise_for_status()
    user_id = profile.json()["user_id"]

    refreshed = oauth.refresh_token(token_url, client_id=client_id, timeout=TIMEOUT)
    assert refreshed["access_token"] != token["access_token"]
    ping = oauth.get(base + "/ping", timeout=TIMEOUT)
    assert ping.status_code == 204, ping.status_code

    print(json.dumps({"ok": True, "user_id": user_id, "state_checked": bool(state),
                      "expires_in": refreshed["expires_in"]}))


if __name__ == "__main__":
    main()
