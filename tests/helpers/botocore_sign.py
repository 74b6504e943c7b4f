#!/usr/bin/env python3
"""Reference SigV4 signer: botocore's SigV4Auth with a frozen clock.

stdin: JSON list of {"name", "method", "url", "headers": [[k, v], ...], "body" (text),
"access_key", "secret_key", "token" (or null), "region", "service", "time" ("YYYYmmddTHHMMSSZ")}.
stdout: JSON list of {"name", "canonical_request", "string_to_sign", "authorization",
"headers": {lower-case name: value}, "body"}.
"""
import datetime
import json
import sys

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class RecordingSigV4Auth(SigV4Auth):
    """SigV4Auth that keeps the canonical request and string to sign it computed."""

    def string_to_sign(self, request, canonical_request):
        self.recorded_canonical = canonical_request
        self.recorded_sts = super().string_to_sign(request, canonical_request)
        return self.recorded_sts


def sign(case):
    frozen = datetime.datetime.strptime(case["time"], "%Y%m%dT%H%M%SZ")
    botocore.auth.get_current_datetime = lambda: frozen
    request = AWSRequest(method=case["method"], url=case["url"], data=case["body"].encode(),
                         headers=dict(case["headers"]))
    auth = RecordingSigV4Auth(Credentials(case["access_key"], case["secret_key"], case["token"]),
                     case["service"], case["region"])
    auth.add_auth(request)
    return {
        "name": case["name"],
        "canonical_request": auth.recorded_canonical,
        "string_to_sign": auth.recorded_sts,
        "authorization": request.headers["Authorization"],
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": request.body.decode() if isinstance(request.body, bytes) else request.body,
    }


if __name__ == "__main__":
    json.dump([sign(c) for c in json.load(sys.stdin)], sys.stdout)
