"""A fake SendGrid v3 API: POST /v3/mail/send in SendGrid's wire format (202 with an empty body; errors
as {"errors": [{"message", "field", "help"}]}; 429 with X-RateLimit-* headers)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.server import FakeAPI, FakeRequest, FakeResponse, FakeServer

API_KEY = "SG.fake-key-for-tests"


def errors(status: int, message: str, headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse.json({"errors": [{"message": message, "field": None, "help": None}]}, status, headers)


class FakeSendGrid(FakeAPI):
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.server = FakeServer(self.handle)

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method != "POST" or request.path != "/v3/mail/send":
            return errors(404, "resource not found")
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return errors(401, "The provided authorization grant is invalid, expired, or revoked")
        try:
            mail = json.loads(request.body)
            assert mail["personalizations"][0]["to"][0]["email"] and mail["from"]["email"] and mail["subject"]
            assert mail["content"]
        except (ValueError, KeyError, IndexError, AssertionError):
            return errors(400, "Bad Request")
        self.sent.append(mail)
        return FakeResponse(202, b"", {"X-Message-Id": f"fake-{len(self.sent)}"})
