"""What a real server's responses say about themselves (issue 18, item 7)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import httpx

from tests.integration.serving.homes import APPLICANT


def test_responses_do_not_name_the_server_software(live_client: httpx.Client) -> None:
    for response in (
        live_client.get("/v2/health/ready"),
        live_client.post("/v1/models/credit-risk:predict", json={"instances": APPLICANT[:1]}),
        live_client.get("/v2/models/nope/ready"),
    ):
        assert "server" not in response.headers, response.headers
        # Date stays: RFC 9110 §6.6.1 asks an origin server with a clock to send it.
        assert parsedate_to_datetime(response.headers["date"]).tzinfo is not None
