#!/usr/bin/env python3
"""A DPoP client (RFC 9449) for the OAuth 2.0 token endpoint example, built on jwcrypto.

    python3 tests/dpop_client.py http://127.0.0.1:3000

jwcrypto makes the key pair, signs every proof and computes the key's thumbprint, so the
layer is checked against an implementation it did not grow up with; HTTP is the standard
library's. For each key type and label (ES256; Ed25519 labelled `Ed25519`, RFC 9864's
name, and `EdDSA`), the client logs in with the password grant and a proof, refreshes with
fresh proofs, then checks what the server refuses: the refresh token without a proof, with
a proof by another key, and a proof sent twice. It prints a JSON summary and exits 1 on
the first failed check (2 when jwcrypto is missing).
"""

import base64
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

try:
    from jwcrypto import jwk, jwt
except ImportError:
    print(
        "dpop_client.py: jwcrypto is not installed: python3 -m pip install jwcrypto",
        file=sys.stderr,
    )
    sys.exit(2)

CLIENT = ("demo-client", "demo-secret")


class Failed(Exception):
    """A check that did not hold."""


def check(condition, what):
    if not condition:
        raise Failed(what)


# The `alg` labels tried, and the key each signs with.
KEYS = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "Ed25519": {"kty": "OKP", "crv": "Ed25519"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
}


def proof(key, url, alg, method="POST"):
    """A DPoP proof JWT for one request to `url`, signed with `key` under `alg`."""
    header = {
        "typ": "dpop+jwt",
        "alg": alg,
        "jwk": key.export_public(as_dict=True),
    }
    claims = {
        "jti": str(uuid.uuid4()),
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
    }
    token = jwt.JWT(header=header, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def post(url, form, dpop=None):
    """POSTs the form with HTTP Basic client authentication: (status, JSON body)."""
    basic = base64.b64encode(":".join(CLIENT).encode()).decode()
    headers = {
        "Authorization": "Basic " + basic,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    if dpop is not None:
        headers["DPoP"] = dpop
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body)
        except ValueError:
            return error.code, {"raw": body.decode(errors="replace")}


def claims_of(token):
    """The (unverified) claims of a compact JWS: what a client reads of its access token."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def run(base):
    summary = {"algorithms": {}}
    for alg, params in KEYS.items():
        summary["algorithms"][alg] = run_with(base, alg, params)
    summary["cnf_in_access_token"] = all(
        result["cnf_in_access_token"] for result in summary["algorithms"].values()
    )
    return summary


def run_with(base, alg, params):
    url = base.rstrip("/") + "/token"
    key = jwk.JWK.generate(**params)
    other = jwk.JWK.generate(**params)
    thumbprint = key.thumbprint()
    summary = {"thumbprint": thumbprint, "checks": []}

    def proof_by(signer):
        return proof(signer, url, alg)

    def granted(status, body, what):
        what = f"{alg}: {what}"
        check(status == 200, f"{what}: expected 200, got {status} {body}")
        check(body.get("token_type") == "DPoP", f"{what}: token_type {body.get('token_type')!r}")
        cnf = claims_of(body["access_token"]).get("cnf")
        if cnf is not None:
            check(cnf.get("jkt") == thumbprint, f"{what}: cnf.jkt {cnf} is not {thumbprint}")
        summary["checks"].append(what)
        return body["refresh_token"]

    def refused(status, body, what):
        what = f"{alg}: {what}"
        check(status == 400, f"{what}: expected 400, got {status} {body}")
        check(
            body.get("error") == "invalid_dpop_proof",
            f"{what}: expected invalid_dpop_proof, got {body}",
        )
        summary["checks"].append(what)

    form = {"grant_type": "password", "username": "alice", "password": "demo"}
    status, body = post(url, form, proof_by(key))
    token = granted(status, body, "login with a proof: DPoP, cnf.jkt is the key's thumbprint")
    summary["cnf_in_access_token"] = "cnf" in claims_of(body["access_token"])

    def refresh_form(refresh_token):
        return {"grant_type": "refresh_token", "refresh_token": refresh_token}

    for i in (1, 2):
        status, body = post(url, refresh_form(token), proof_by(key))
        token = granted(status, body, f"refresh {i} with a fresh proof")

    status, body = post(url, refresh_form(token))
    refused(status, body, "refresh without a proof")
    status, body = post(url, refresh_form(token), proof_by(other))
    refused(status, body, "refresh with a proof by another key")

    # Neither refusal spent or revoked anything: the owner's token still rotates.
    status, body = post(url, refresh_form(token), proof_by(key))
    token = granted(status, body, "the owner refreshes after the refusals")

    # A proof is good for one request: the same DPoP header again is refused, even with
    # the session's current token.
    once = proof_by(key)
    status, body = post(url, refresh_form(token), once)
    token = granted(status, body, "refresh with a proof, first use")
    status, body = post(url, refresh_form(token), once)
    refused(status, body, "the same proof again")

    return summary


def main():
    if len(sys.argv) != 2:
        print("usage: dpop_client.py BASE_URL", file=sys.stderr)
        return 2
    try:
        summary = run(sys.argv[1])
    except Failed as failure:
        print(json.dumps({"ok": False, "failed": str(failure)}, indent=2))
        return 1
    summary["ok"] = True
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
