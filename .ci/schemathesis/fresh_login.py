"""Schemathesis hook for the routes that end sessions: each request logs in
anew, so that an earlier logout or password change does not turn every
later request into a 401."""

import os

import requests
import schemathesis


@schemathesis.auth(refresh_interval=None)
class FreshLogin:
    def get(self, case, ctx):
        reply = requests.post(
            f"{os.environ['CONTRACT_BASE_URL']}/auth/token",
            data={
                "username": os.environ["CONTRACT_USERNAME"],
                "password": os.environ["CONTRACT_PASSWORD"],
            },
            timeout=10,
        )
        reply.raise_for_status()
        return reply.json()["access_token"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
