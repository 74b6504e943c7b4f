#!/usr/bin/env python3
"""Mints the JWT test corpus with an independent library (PyJWT + cryptography).

Writes JSON: two issuers (an HS256 one and a JWKS one with RS256/ES256/EdDSA keys), the
keys, a fixed `now`, and cases — valid tokens and every attack the verifier must refuse —
each with the verdict the broker must reach: "ok", "invalid_token" or "token_expired".
The Rust tests (tests/jwt_corpus.rs) and the end-to-end tests both read it.

Attack tokens that PyJWT refuses to produce (alg none, HMAC keyed with a public key,
DER-encoded ECDSA, …) are assembled here by hand on purpose.

usage: mint_tokens.py OUT.json          (frozen `now`, for the native tests)
as a module: keys = make_keys(); corpus = mint(keys, now)   (the end-to-end tests)
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z, the frozen clock of the native tests
HS_ISS, JWKS_ISS, AUD = "https://rise.test", "https://idp.test", "rise"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jws(header: dict, claims: dict, sign) -> str:
    signing_input = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    return signing_input + "." + b64u(sign(signing_input.encode()))


def public_jwk(key, kid, alg):
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    return jwk


def make_keys():
    """Fresh keys: the HS256 secret, the JWKS issuer's three key pairs, an attacker's key."""
    keys = {
        "hs_secret": os.urandom(32),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "attacker_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }
    keys["jwks"] = {"keys": [public_jwk(keys["rsa"], "rsa-1", "RS256"), public_jwk(keys["ec"], "ec-1", "ES256"),
                             public_jwk(keys["ed"], "ed-1", "EdDSA")]}
    return keys


def mint(keys, NOW):
    """The corpus: issuers, keys and cases, for a verifier whose clock reads NOW."""
    hs_secret, rsa_key, ec_key, ed_key = keys["hs_secret"], keys["rsa"], keys["ec"], keys["ed"]
    attacker_rsa, jwks = keys["attacker_rsa"], keys["jwks"]

    def claims(iss=JWKS_ISS, **extra):
        base = {"iss": iss, "aud": AUD, "sub": "user-42", "exp": NOW + 3600, "iat": NOW - 10,
                "projects": ["my-app"]}
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    cases = []

    def case(name, token, expect):
        cases.append({"name": name, "token": token, "expect": expect})

    hs = lambda c, **h: jwt.encode(c, hs_secret, algorithm="HS256", headers=h or None)
    rs = lambda c, kid="rsa-1", **h: jwt.encode(c, rsa_key, algorithm="RS256", headers={"kid": kid, **h})
    es = lambda c, kid="ec-1": jwt.encode(c, ec_key, algorithm="ES256", headers={"kid": kid})
    ed = lambda c, kid="ed-1": jwt.encode(c, ed_key, algorithm="EdDSA", headers={"kid": kid})

    # Valid tokens, one per algorithm and claim shape.
    case("hs256_valid", hs(claims(HS_ISS)), "ok")
    case("rs256_valid", rs(claims()), "ok")
    case("es256_valid", es(claims()), "ok")
    case("eddsa_valid", ed(claims()), "ok")
    case("aud_array_valid", rs(claims(aud=["other", AUD])), "ok")
    case("nbf_past_valid", es(claims(nbf=NOW - 60)), "ok")
    case("exp_within_leeway_valid", ed(claims(exp=NOW - 30)), "ok")
    case("nbf_within_leeway_valid", rs(claims(nbf=NOW + 30)), "ok")
    case("no_sub_valid", hs(claims(HS_ISS, sub=None)), "ok")

    # Time.
    case("expired", rs(claims(exp=NOW - 3600)), "token_expired")
    case("hs256_expired", hs(claims(HS_ISS, exp=NOW - 120)), "token_expired")
    case("missing_exp", es(claims(exp=None)), "invalid_token")
    case("exp_string", ed(claims(exp=str(NOW + 3600))), "invalid_token")
    case("nbf_future", rs(claims(nbf=NOW + 3600)), "invalid_token")
    case("iat_future", es(claims(iat=NOW + 3600)), "invalid_token")
    expired = rs(claims(exp=NOW - 3600))
    case("expired_and_bad_signature", expired[:-4] + ("AAAA" if not expired.endswith("AAAA") else "BBBB"), "invalid_token")

    # Issuer and audience.
    case("unknown_issuer", rs(claims(iss="https://evil.test")), "invalid_token")
    case("missing_issuer", rs(claims(iss=None)), "invalid_token")
    case("issuer_array", rs(claims(iss=[JWKS_ISS])), "invalid_token")
    case("wrong_audience", rs(claims(aud="other")), "invalid_token")
    case("audience_array_without_ours", rs(claims(aud=["a", "b"])), "invalid_token")
    case("missing_audience", rs(claims(aud=None)), "invalid_token")
    case("audience_number", rs(claims(aud=7)), "invalid_token")
    case("hs256_wrong_secret", jwt.encode(claims(HS_ISS), os.urandom(32), algorithm="HS256"), "invalid_token")
    case("rs256_token_claiming_hs_issuer", rs(claims(HS_ISS)), "invalid_token")

    # Algorithm confusion and `none`.
    for alg in ["none", "None", "NONE", "nOnE"]:
        case(f"alg_{alg}", raw_jws({"alg": alg, "typ": "JWT"}, claims(), lambda m: b""), "invalid_token")
        case(f"alg_{alg}_hs_issuer", raw_jws({"alg": alg}, claims(HS_ISS), lambda m: b""), "invalid_token")
    rsa_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    mac = lambda key: (lambda m: hmac.new(key, m, hashlib.sha256).digest())
    case("hs256_keyed_with_rsa_public_pem", raw_jws({"alg": "HS256", "kid": "rsa-1"}, claims(), mac(rsa_pem)), "invalid_token")
    case("hs256_keyed_with_jwks_json", raw_jws({"alg": "HS256", "kid": "rsa-1"}, claims(), mac(json.dumps(jwks["keys"][0]).encode())), "invalid_token")
    case("rs256_with_ec_kid", rs(claims(), kid="ec-1"), "invalid_token")
    case("es256_with_ed_kid", es(claims(), kid="ed-1"), "invalid_token")
    case("eddsa_with_rsa_kid", ed(claims(), kid="rsa-1"), "invalid_token")
    case("rs256_for_hs_issuer", rs(claims(HS_ISS)), "invalid_token")
    case("ps256_with_rsa_kid", jwt.encode(claims(), rsa_key, algorithm="PS256", headers={"kid": "rsa-1"}), "invalid_token")
    case("hs384_for_hs_issuer", jwt.encode(claims(HS_ISS), hs_secret, algorithm="HS384"), "invalid_token")

    # Keys: kid handling and embedded/remote key references.
    case("missing_kid_multi_key_set", jwt.encode(claims(), rsa_key, algorithm="RS256"), "invalid_token")
    case("unknown_kid", rs(claims(), kid="rsa-2"), "invalid_token")
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker_rsa.public_key()))
    case("embedded_jwk", jwt.encode(claims(), attacker_rsa, algorithm="RS256", headers={"kid": "rsa-1", "jwk": attacker_jwk}), "invalid_token")
    case("jku_header", rs(claims(), jku="https://evil.test/jwks"), "invalid_token")
    case("x5u_header", rs(claims(), x5u="https://evil.test/cert"), "invalid_token")
    case("x5c_header", rs(claims(), x5c=["MIIB"]), "invalid_token")
    case("crit_header", rs(claims(), crit=["exp"]), "invalid_token")
    case("attacker_key_with_valid_kid", jwt.encode(claims(), attacker_rsa, algorithm="RS256", headers={"kid": "rsa-1"}), "invalid_token")

    # Signatures.
    good = es(claims())
    h, p, s = good.split(".")
    tampered_claims = b64u(json.dumps(claims(projects=["other-app"])).encode())
    case("tampered_payload", f"{h}.{tampered_claims}.{s}", "invalid_token")
    case("truncated_signature", f"{h}.{p}.{s[:-8]}", "invalid_token")
    case("empty_signature", f"{h}.{p}.", "invalid_token")
    r_s = base64.urlsafe_b64decode(s + "==")
    der = encode_dss_signature(int.from_bytes(r_s[:32], "big"), int.from_bytes(r_s[32:], "big"))
    case("es256_der_signature", f"{h}.{p}.{b64u(der)}", "invalid_token")
    sig_input = raw_jws({"alg": "ES256", "kid": "ec-1"}, claims(), lambda m: b"")[:-1]
    zero_sig = b"\x00" * 64
    case("es256_zero_signature", sig_input + "." + b64u(zero_sig), "invalid_token")

    # Shape.
    case("two_segments", f"{h}.{p}", "invalid_token")
    case("four_segments", f"{h}.{p}.{s}.{s}", "invalid_token")
    case("padding_chars", f"{h}=.{p}.{s}", "invalid_token")
    case("standard_base64_chars", f"{h}.{p}+/.{s}", "invalid_token")
    case("whitespace_inside", f"{h}. {p}.{s}", "invalid_token")
    case("header_not_json", f"{b64u(b'not json')}.{p}.{s}", "invalid_token")
    case("claims_not_json", f"{h}.{b64u(b'[1,2')}.{s}", "invalid_token")
    case("oversized", rs(claims(pad="x" * 9000)), "invalid_token")
    case("empty", "", "invalid_token")

    return {
        "generator": f"PyJWT {jwt.__version__}",
        "now": NOW,
        "audience": AUD,
        "hs256_issuer": HS_ISS,
        "hs256_secret_b64": base64.b64encode(hs_secret).decode(),
        "jwks_issuer": JWKS_ISS,
        "jwks": jwks,
        "cases": cases,
    }


def main(out):
    corpus = mint(make_keys(), NOW)
    with open(out, "w") as f:
        json.dump(corpus, f, indent=1)
    print(f"minted {len(corpus['cases'])} tokens with PyJWT {jwt.__version__} into {out}")


if __name__ == "__main__":
    main(sys.argv[1])
