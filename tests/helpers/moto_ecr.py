#!/usr/bin/env python3
"""Local AWS for the ECR provider: moto on loopback with signature checking on.

    moto_ecr.py --port 4566 [--keep-moto-expiry] [--env-file PATH]

1. Starts moto's ThreadedMotoServer on 127.0.0.1.
2. Test shim (the only patch): moto answers GetAuthorizationToken with a fixed
   `expiresAt` of 2015-01-01, which a correct broker refuses as expired. Unless
   --keep-moto-expiry is given, that one timestamp is replaced with now + 12 h.
3. While auth is still off: creates the IAM user `rise-broker` with an access key and a
   policy allowing sts:AssumeRole + sts:SetSourceIdentity on the push role, the role
   `rise-ecr-push` (trusting that user) with an ECR push policy, and the repository
   `rise/my-app`.
4. POST /moto-api/reset-auth with 0: from now on moto checks every signature, key and
   role trust.
5. Prints one JSON line with the endpoint and the user's access key (and writes
   KEY=VALUE lines to --env-file), then serves until killed.
"""
import argparse
import json
import sys
import threading
import urllib.request
from datetime import datetime, timedelta, timezone

import botocore.session
from moto.ecr import responses as ecr_responses
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
PUSH_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rise-ecr-push"


def patch_expiry():
    original = ecr_responses.ECRResponse.get_authorization_token

    def get_authorization_token(self):
        result = original(self)
        for data in result.result["authorizationData"]:
            data["expiresAt"] = datetime.now(timezone.utc) + timedelta(hours=12)
        return result

    ecr_responses.ECRResponse.get_authorization_token = get_authorization_token


def client(service, endpoint):
    return botocore.session.get_session().create_client(
        service, region_name=REGION, endpoint_url=endpoint,
        aws_access_key_id="setup", aws_secret_access_key="setup")


def set_up(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName="rise-broker")
    key = iam.create_access_key(UserName="rise-broker")["AccessKey"]
    iam.put_user_policy(UserName="rise-broker", PolicyName="assume-push-role", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                       "Resource": PUSH_ROLE}]}))
    iam.create_role(RoleName="rise-ecr-push", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow",
                       "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/rise-broker"},
                       "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]}]}))
    iam.put_role_policy(RoleName="rise-ecr-push", PolicyName="ecr-push", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ecr:*"], "Resource": "*"}]}))
    client("ecr", endpoint).create_repository(repositoryName="rise/my-app")
    urllib.request.urlopen(urllib.request.Request(
        endpoint + "/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}))
    return key["AccessKeyId"], key["SecretAccessKey"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keep-moto-expiry", action="store_true")
    parser.add_argument("--env-file")
    args = parser.parse_args()
    if not args.keep_moto_expiry:
        patch_expiry()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{args.port}"
    akid, secret = set_up(endpoint)
    if args.env_file:
        with open(args.env_file, "w") as f:
            f.write(f"AWS_ACCESS_KEY_ID={akid}\nAWS_SECRET_ACCESS_KEY={secret}\n")
    print(json.dumps({"endpoint": endpoint, "access_key_id": akid, "secret_access_key": secret,
                      "account_id": ACCOUNT, "region": REGION, "push_role_arn": PUSH_ROLE}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
