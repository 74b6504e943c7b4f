#!/usr/bin/env python3
"""Reference SigV4 signer: botocore's SigV4Auth with a frozen clock.

stdin: JSON list of {"name", "method", "url", "headers": [[k, v], ...], "body" (text),
"access_key", "secret_key", "token" (or null), "region", "service", "time" ("YYYYmmddTHHMMSSZ")}.
Optional "assume_role_params": the AssumeRole parameters; botocore's own Query
serializer then builds the body it would send ("botocore_body"), to compare with ours.
stdout: JSON list of {"name", "canonical_request", "string_to_sign", "authorization",
"headers": {lower-case name: value}, "body", "botocore_body"}.
"""
import datetime
import json
import sys

import botocore.auth
import botocore.serialize
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class RecordingSigV4Auth(SigV4Auth):
    """SigV4Auth that keeps the canonical request and string to sign it computed."""

    def string_to_sign(self, request, canonical_request):
        self.recorded_canonical = canonical_request
        self.recorded_sts = super().string_to_sign(request, canonical_request)
        return self.recorded_sts


def botocore_body(params):
    """The form body botocore itself would send for sts:AssumeRole with these parameters."""
    model = botocore.session.get_session().get_service_model("sts").operation_model("AssumeRole")
    serialized = botocore.serialize.create_serializer("query").serialize_to_request(params, model)
    prepared = AWSRequest(method="POST", url="https://sts.amazonaws.com/", data=serialized["body"]).prepare()
    return prepared.body if isinstance(prepared.body, str) else prepared.body.decode()


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
        "botocore_body": botocore_body(case["assume_role_params"]) if case.get("assume_role_params") else None,
    }


if __name__ == "__main__":
    json.dump([sign(c) for c in json.load(sys.stdin)], sys.stdout)
