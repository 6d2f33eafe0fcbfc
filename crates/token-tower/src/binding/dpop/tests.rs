//! The proof reader's tests, over every check.

use super::htu::Origin;
use super::htu::normalise_path;
use super::jwk::PRIVATE_MEMBERS;
use super::proof::decode_object;
use super::proof::{MAX_JTI_LEN, MAX_PROOF_LEN};
use super::proof::{check, verify};
use super::*;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use jsonwebtoken::Algorithm;
use serde_json::Value;
use sha2::{Digest, Sha256};

use http::HeaderValue;
use serde_json::json;
use test_support::dpop::DpopKey;

/// RFC 9449 section 4.1, Figure 2 (also Figure 5): the proof of a token request, ES256.
const RFC9449_TOKEN_REQUEST: &str = concat!(
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
    "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
    "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
    "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj",
    "oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia",
    "WF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg",
    "4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg",
);

/// RFC 9449 section 5, Figure 7: the proof of a refresh-token request, same key.
const RFC9449_REFRESH_REQUEST: &str = concat!(
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
    "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
    "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
    "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj",
    "oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia",
    "WF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5Qs",
    "GSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA",
);

/// RFC 9449 section 7.1, Figure 13: the proof of a protected-resource request, with
/// `ath` over the access token `Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU`.
const RFC9449_RESOURCE_REQUEST: &str = concat!(
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
    "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
    "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
    "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIj",
    "oiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0Z",
    "WRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNF",
    "c05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71E",
    "OptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA",
);

/// The `jkt` RFC 9449 section 6.1 gives for the key of its examples.
const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

const ORIGIN: &str = "https://api.example.com";
const HTU: &str = "https://api.example.com/refresh";
const NOW: i64 = 1_700_000_000;

fn config() -> DpopConfig {
    DpopConfig::new()
        .policy(DpopPolicy::Optional)
        .origin(ORIGIN)
        .unwrap()
}

fn headers(proofs: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for proof in proofs {
        headers.append("DPoP", HeaderValue::from_str(proof).unwrap());
    }
    headers
}

fn verify_at(
    config: &DpopConfig,
    method: &str,
    uri: &str,
    proof: &str,
    now: i64,
) -> Result<Option<VerifiedProof>, DpopError> {
    verify(
        &headers(&[proof]),
        &Method::from_bytes(method.as_bytes()).unwrap(),
        &uri.parse().unwrap(),
        config,
        now,
    )
}

/// `POST /refresh` with [`config`] at [`NOW`].
fn verdict(proof: &str) -> Result<Option<VerifiedProof>, DpopError> {
    verify_at(&config(), "POST", "/refresh", proof, NOW)
}

fn refusal(proof: &str) -> DpopError {
    verdict(proof).expect_err("the proof is refused")
}

/// The claims of a good proof for `POST /refresh` at [`NOW`].
fn claims() -> Value {
    json!({"jti": "j-1", "htm": "POST", "htu": HTU, "iat": NOW})
}

fn with(mut value: Value, name: &str, member: Value) -> Value {
    value[name] = member;
    value
}

fn without(mut value: Value, name: &str) -> Value {
    value.as_object_mut().unwrap().remove(name);
    value
}

#[test]
fn the_rfc_token_request_proof_is_accepted_at_its_iat() {
    let config = DpopConfig::new()
        .origin("https://server.example.com")
        .unwrap();
    let verified = verify_at(
        &config,
        "POST",
        "/token",
        RFC9449_TOKEN_REQUEST,
        1_562_262_616,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        verified,
        VerifiedProof {
            thumbprint: RFC9449_JKT.into(),
            jti: "-BwC3ESc6acc2lTc".into(),
            iat: 1_562_262_616,
        }
    );
    // The same through the Host header, and with a query on the request.
    let mut headers = headers(&[RFC9449_TOKEN_REQUEST]);
    headers.insert(
        http::header::HOST,
        HeaderValue::from_static("server.example.com"),
    );
    let from_host = verify(
        &headers,
        &Method::POST,
        &"/token?x=1".parse().unwrap(),
        &DpopConfig::new(),
        1_562_262_616,
    );
    assert_eq!(from_host, Ok(Some(verified)));
}

#[test]
fn the_rfc_token_request_proof_is_refused_for_another_request_or_time() {
    let config = DpopConfig::new()
        .origin("https://server.example.com")
        .unwrap();
    let at = |method, uri, now| verify_at(&config, method, uri, RFC9449_TOKEN_REQUEST, now);
    assert_eq!(
        at("GET", "/token", 1_562_262_616),
        Err(DpopError::MethodMismatch)
    );
    assert_eq!(
        at("POST", "/refresh", 1_562_262_616),
        Err(DpopError::UriMismatch)
    );
    assert_eq!(
        at("POST", "/token", 1_562_262_616 + 61),
        Err(DpopError::Expired)
    );
    assert_eq!(at("POST", "/token", 1_700_000_000), Err(DpopError::Expired));
    assert_eq!(
        at("POST", "/token", 1_562_262_616 - 6),
        Err(DpopError::IssuedInFuture)
    );
    let other = DpopConfig::new()
        .origin("https://other.example.com")
        .unwrap();
    assert_eq!(
        verify_at(
            &other,
            "POST",
            "/token",
            RFC9449_TOKEN_REQUEST,
            1_562_262_616
        ),
        Err(DpopError::UriMismatch)
    );
}

#[test]
fn the_rfc_refresh_request_proof_is_accepted_at_its_iat() {
    let config = DpopConfig::new()
        .origin("https://server.example.com")
        .unwrap();
    let verified = verify_at(
        &config,
        "POST",
        "/token",
        RFC9449_REFRESH_REQUEST,
        1_562_265_296,
    )
    .unwrap()
    .unwrap();
    assert_eq!(verified.thumbprint, RFC9449_JKT);
    assert_eq!(verified.jti, "-BwC3ESc6acc2lTc");
    assert_eq!(verified.iat, 1_562_265_296);
    // Its iat is 45 minutes after the token request's.
    assert_eq!(
        verify_at(
            &config,
            "POST",
            "/token",
            RFC9449_REFRESH_REQUEST,
            1_562_262_616
        ),
        Err(DpopError::IssuedInFuture)
    );
}

#[test]
fn the_rfc_resource_request_proof_is_accepted_and_its_ath_is_the_tokens_hash() {
    let config = DpopConfig::new()
        .origin("https://resource.example.org")
        .unwrap();
    let verified = verify_at(
        &config,
        "GET",
        "/protectedresource",
        RFC9449_RESOURCE_REQUEST,
        1_562_262_618,
    )
    .unwrap()
    .unwrap();
    assert_eq!(verified.thumbprint, RFC9449_JKT);
    assert_eq!(verified.jti, "e1j3V_bKic8-LAEB");
    // `ath` (RFC 9449 section 4.2) is the base64url SHA-256 of the access token.
    let payload = RFC9449_RESOURCE_REQUEST.split('.').nth(1).unwrap();
    let claims = decode_object(payload).unwrap();
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(
        b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU",
    ));
    assert_eq!(claims["ath"], ath);
    assert_eq!(ath, "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
}

#[test]
fn the_rfc_nonce_payload_is_answered_with_use_dpop_nonce_by_a_server_that_did_not_issue_it() {
    // RFC 9449 section 8 prints this payload unsigned; here a test key signs it.
    let key = DpopKey::es256();
    let proof = key.proof_with(json!({
        "jti": "-BwC3ESc6acc2lTc",
        "htm": "POST",
        "htu": "https://server.example.com/token",
        "iat": 1_562_262_616,
        "nonce": "eyJ7S_zG.eyJH0-Z.HX4w-7v",
    }));
    let config = DpopConfig::new()
        .origin("https://server.example.com")
        .unwrap();
    assert!(verify_at(&config, "POST", "/token", &proof, 1_562_262_616).is_ok());
    let config = config.nonces(DpopNonces::new(&[1; 32], Duration::from_secs(300)));
    let refused = verify_at(&config, "POST", "/token", &proof, 1_562_262_616).unwrap_err();
    assert_eq!(refused, DpopError::StaleNonce);
    assert!(refused.needs_nonce());
}

#[test]
fn thumbprints_follow_rfc_7638() {
    // RFC 7638 section 3.1, with its `alg` and `kid` members, which do not count.
    let rsa = json!({
        "kty": "RSA",
        "n": concat!(
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6",
            "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ",
            "5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbIS",
            "D08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-k",
            "EgU8awapJzKnqDKgw",
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    });
    assert_eq!(
        jwk_thumbprint(&rsa).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // RFC 9449's example key, members in the order the RFC prints them.
    let ec = json!({
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256",
    });
    assert_eq!(jwk_thumbprint(&ec).unwrap(), RFC9449_JKT);
    // The test signer computes its thumbprints independently.
    for key in [DpopKey::es256(), DpopKey::ed25519(), DpopKey::rs256()] {
        assert_eq!(jwk_thumbprint(&key.public_jwk()).unwrap(), key.thumbprint());
    }
    assert_eq!(
        jwk_thumbprint(&json!({"kty": "oct", "k": "c2VjcmV0"})),
        Err(JwkThumbprintError::UnsupportedKeyType)
    );
    assert_eq!(
        jwk_thumbprint(&without(ec, "y")),
        Err(JwkThumbprintError::MissingMember("y"))
    );
    assert_eq!(
        jwk_thumbprint(&json!("EC")),
        Err(JwkThumbprintError::NotAnObject)
    );
}

#[test]
fn every_default_algorithm_is_accepted_and_bound_to_its_key() {
    for key in [
        DpopKey::es256(),
        DpopKey::ed25519(),
        DpopKey::rs256(),
        DpopKey::ps256(),
    ] {
        let verified = verdict(&key.proof_with(claims())).unwrap().unwrap();
        assert_eq!(
            verified.thumbprint,
            key.thumbprint(),
            "{:?}",
            key.algorithm()
        );
        assert_eq!(verified.jti, "j-1");
        assert_eq!(verified.iat, NOW);
    }
    // A proof made now, by the signer's own clock.
    let key = DpopKey::es256();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let proof = key.proof("POST", HTU, None);
    assert!(verify_at(&config(), "POST", "/refresh", &proof, now).is_ok());
}

#[test]
fn no_header_is_none_and_the_policy_decides() {
    let none = HeaderMap::new();
    let uri: Uri = "/refresh".parse().unwrap();
    assert_eq!(verify(&none, &Method::POST, &uri, &config(), NOW), Ok(None));
    let required = config().policy(DpopPolicy::Required);
    assert_eq!(
        check(&none, &Method::POST, &uri, &required, NOW),
        Err(DpopError::MissingProof)
    );
    assert_eq!(check(&none, &Method::POST, &uri, &config(), NOW), Ok(None));
    // Off does not even read a broken header.
    let garbage = headers(&["garbage"]);
    let off = config().policy(DpopPolicy::Off);
    assert_eq!(check(&garbage, &Method::POST, &uri, &off, NOW), Ok(None));
    assert_eq!(
        check(&garbage, &Method::POST, &uri, &config(), NOW),
        Err(DpopError::Malformed)
    );
    let good = DpopKey::es256().proof_with(claims());
    assert!(matches!(
        check(&headers(&[&good]), &Method::POST, &uri, &required, NOW),
        Ok(Some(_))
    ));
    assert_eq!(DpopConfig::default().policy, DpopPolicy::Off);
}

#[test]
fn two_dpop_headers_are_refused() {
    let key = DpopKey::es256();
    let proof = key.proof_with(claims());
    let result = verify(
        &headers(&[&proof, &proof]),
        &Method::POST,
        &"/refresh".parse().unwrap(),
        &config(),
        NOW,
    );
    assert_eq!(result, Err(DpopError::MultipleHeaders));
}

#[test]
fn an_oversized_header_is_refused_before_it_is_parsed() {
    let key = DpopKey::es256();
    let padding = "x".repeat(MAX_PROOF_LEN);
    let big = key.proof_with(with(claims(), "pad", json!(padding)));
    assert!(big.len() > MAX_PROOF_LEN);
    assert_eq!(refusal(&big), DpopError::TooLarge);
    assert_eq!(refusal(&"a".repeat(MAX_PROOF_LEN + 1)), DpopError::TooLarge);
    // Just under the limit, the same proof shape is fine.
    let fits = key.proof_with(with(claims(), "pad", json!("x".repeat(MAX_PROOF_LEN / 2))));
    assert!(fits.len() <= MAX_PROOF_LEN && verdict(&fits).is_ok());
}

#[test]
fn malformed_proofs_are_refused() {
    let key = DpopKey::es256();
    let good = key.proof_with(claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        "a.b".into(),
        format!("{good}.extra"),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode("[1]"),
            parts[1],
            parts[2]
        ),
        format!("{}.{}.{}", parts[0], parts[1], "!!"),
    ];
    for proof in cases {
        assert_eq!(refusal(&proof), DpopError::Malformed, "{proof}");
    }
    // A payload that is not an object, under a valid signature.
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&key.header()).unwrap());
    let array = key.sign(&key.header(), &json!([1]));
    assert!(array.starts_with(&header));
    assert_eq!(refusal(&array), DpopError::Malformed);
}

#[test]
fn the_type_must_be_dpop_jwt() {
    let key = DpopKey::es256();
    for typ in [
        json!("JWT"),
        json!("DPOP+JWT"),
        json!("application/dpop+jwt"),
        json!(1),
    ] {
        let proof = key.sign(&with(key.header(), "typ", typ), &claims());
        assert_eq!(refusal(&proof), DpopError::WrongType);
    }
    let proof = key.sign(&without(key.header(), "typ"), &claims());
    assert_eq!(refusal(&proof), DpopError::WrongType);
}

#[test]
fn a_critical_header_extension_is_refused() {
    let key = DpopKey::es256();
    let header = with(with(key.header(), "crit", json!(["exp"])), "exp", json!(1));
    assert_eq!(
        refusal(&key.sign(&header, &claims())),
        DpopError::CriticalHeader
    );
}

#[test]
fn none_and_symmetric_algorithms_are_refused_whatever_the_config() {
    let key = DpopKey::es256();
    let good = key.proof_with(claims());
    let payload = good.split('.').nth(1).unwrap();
    let none_header = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&with(key.header(), "alg", json!("none"))).unwrap());
    assert_eq!(
        refusal(&format!("{none_header}.{payload}.")),
        DpopError::AlgorithmNotAllowed
    );
    // An HS256 proof keyed with a symmetric `jwk`, even when the configuration names
    // HS256: the HMAC algorithms are dropped from the list.
    let message = format!(
        "{}.{payload}",
        URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({
                "typ": "dpop+jwt",
                "alg": "HS256",
                "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(b"secret")},
            }))
            .unwrap()
        )
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
    mac.update(message.as_bytes());
    let hs256 = format!(
        "{message}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    let permissive = config().allowed_algorithms([Algorithm::HS256, Algorithm::ES256]);
    assert_eq!(permissive.algorithms, [Algorithm::ES256]);
    for config in [config(), permissive] {
        assert_eq!(
            verify_at(&config, "POST", "/refresh", &hs256, NOW),
            Err(DpopError::AlgorithmNotAllowed)
        );
    }
    for alg in [json!("HS512"), json!("ES999"), json!(null)] {
        let proof = key.sign(&with(key.header(), "alg", alg), &claims());
        assert_eq!(refusal(&proof), DpopError::AlgorithmNotAllowed);
    }
}

#[test]
fn only_the_configured_algorithms_are_accepted() {
    let es256_only = config().allowed_algorithms([Algorithm::ES256]);
    let ed = DpopKey::ed25519().proof_with(claims());
    assert_eq!(
        verify_at(&es256_only, "POST", "/refresh", &ed, NOW),
        Err(DpopError::AlgorithmNotAllowed)
    );
    let es = DpopKey::es256().proof_with(claims());
    assert!(verify_at(&es256_only, "POST", "/refresh", &es, NOW).is_ok());
}

#[test]
fn the_jwk_must_be_present_and_public() {
    let key = DpopKey::es256();
    assert_eq!(
        refusal(&key.sign(&without(key.header(), "jwk"), &claims())),
        DpopError::MissingKey
    );
    assert_eq!(
        refusal(&key.sign(&with(key.header(), "jwk", json!("key")), &claims())),
        DpopError::UnusableKey
    );
    // Any private member, whatever its value (the signature would verify: the public
    // members are the signer's own).
    for member in PRIVATE_MEMBERS {
        let jwk = with(key.public_jwk(), member, json!("AQAB"));
        let proof = key.sign(&with(key.header(), "jwk", jwk), &claims());
        assert_eq!(refusal(&proof), DpopError::PrivateKey, "{member}");
    }
    let rsa = DpopKey::rs256();
    let jwk = with(rsa.public_jwk(), "p", json!("AQAB"));
    let proof = rsa.sign(&with(rsa.header(), "jwk", jwk), &claims());
    assert_eq!(refusal(&proof), DpopError::PrivateKey);
}

#[test]
fn the_jwk_must_fit_the_algorithm() {
    let ec = DpopKey::es256();
    let ed = DpopKey::ed25519();
    let rsa = DpopKey::rs256();
    let jwk_cases = [
        // An Ed25519 key under ES256, and the other way round.
        (&ec, ed.public_jwk()),
        (&ed, ec.public_jwk()),
        (&rsa, ec.public_jwk()),
        // The right type, the wrong curve.
        (&ec, with(ec.public_jwk(), "crv", json!("P-384"))),
        (&ed, with(ed.public_jwk(), "crv", json!("Ed448"))),
        // A coordinate short by a byte, and one that is not base64url.
        (
            &ec,
            with(ec.public_jwk(), "x", json!(URL_SAFE_NO_PAD.encode([1; 31]))),
        ),
        (
            &ed,
            with(ed.public_jwk(), "x", json!(URL_SAFE_NO_PAD.encode([1; 31]))),
        ),
        (&ec, with(ec.public_jwk(), "y", json!("not base64!"))),
        // A 1024-bit modulus, and a modulus with a leading zero byte.
        (
            &rsa,
            with(
                rsa.public_jwk(),
                "n",
                json!(URL_SAFE_NO_PAD.encode([0xc5; 128])),
            ),
        ),
        (&rsa, {
            let n = URL_SAFE_NO_PAD
                .decode(rsa.public_jwk()["n"].as_str().unwrap())
                .unwrap();
            with(
                rsa.public_jwk(),
                "n",
                json!(URL_SAFE_NO_PAD.encode([&[0][..], &n].concat())),
            )
        }),
    ];
    for (key, jwk) in jwk_cases {
        let proof = key.sign(&with(key.header(), "jwk", jwk.clone()), &claims());
        assert_eq!(
            refusal(&proof),
            DpopError::UnusableKey,
            "{:?} {jwk}",
            key.algorithm()
        );
    }
    // The same point split differently between x and y: a second spelling of the key,
    // with another thumbprint, that the signature alone would not catch.
    let (x, y) = (ec.public_jwk()["x"].clone(), ec.public_jwk()["y"].clone());
    let x = URL_SAFE_NO_PAD.decode(x.as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(y.as_str().unwrap()).unwrap();
    let respelled = with(
        with(
            ec.public_jwk(),
            "x",
            json!(URL_SAFE_NO_PAD.encode([&x[..], &y[..1]].concat())),
        ),
        "y",
        json!(URL_SAFE_NO_PAD.encode(&y[1..])),
    );
    let proof = ec.sign(&with(ec.header(), "jwk", respelled), &claims());
    assert_eq!(refusal(&proof), DpopError::UnusableKey);
    // A point that is not on the curve.
    let off_curve = with(ec.public_jwk(), "y", json!(URL_SAFE_NO_PAD.encode([7; 32])));
    let proof = ec.sign(&with(ec.header(), "jwk", off_curve), &claims());
    assert!(matches!(
        refusal(&proof),
        DpopError::UnusableKey | DpopError::InvalidSignature
    ));
}

#[test]
fn a_proof_signed_by_another_key_is_refused() {
    for (signer, named) in [
        (DpopKey::es256(), DpopKey::es256()),
        (DpopKey::ed25519(), DpopKey::ed25519()),
        (DpopKey::ps256(), DpopKey::rs256()),
    ] {
        // `named`'s header (its jwk and alg), `signer`'s signature.
        let proof = signer.sign(&named.header(), &claims());
        assert_eq!(
            refusal(&proof),
            DpopError::InvalidSignature,
            "{:?}",
            signer.algorithm()
        );
    }
    // A valid proof with one claim changed after signing.
    let key = DpopKey::es256();
    let good = key.proof_with(claims());
    let other = key.proof_with(with(claims(), "jti", json!("j-2")));
    let (g, o): (Vec<&str>, Vec<&str>) = (good.split('.').collect(), other.split('.').collect());
    let spliced = format!("{}.{}.{}", g[0], o[1], g[2]);
    assert_eq!(refusal(&spliced), DpopError::InvalidSignature);
}

#[test]
fn the_jti_must_be_a_short_non_empty_string() {
    let key = DpopKey::es256();
    for jti in [json!(""), json!(7), json!("j".repeat(MAX_JTI_LEN + 1))] {
        let proof = key.proof_with(with(claims(), "jti", jti));
        assert_eq!(refusal(&proof), DpopError::InvalidJti);
    }
    assert_eq!(
        refusal(&key.proof_with(without(claims(), "jti"))),
        DpopError::InvalidJti
    );
    let longest = key.proof_with(with(claims(), "jti", json!("j".repeat(MAX_JTI_LEN))));
    assert!(verdict(&longest).is_ok());
}

#[test]
fn the_method_must_match() {
    let key = DpopKey::es256();
    for htm in [json!("GET"), json!("post"), json!(null)] {
        let proof = key.proof_with(with(claims(), "htm", htm));
        assert_eq!(refusal(&proof), DpopError::MethodMismatch);
    }
    assert_eq!(
        refusal(&key.proof_with(without(claims(), "htm"))),
        DpopError::MethodMismatch
    );
}

#[test]
fn the_uri_must_match_in_scheme_host_port_and_path() {
    let key = DpopKey::es256();
    for htu in [
        "https://evil.example.com/refresh",
        "http://api.example.com/refresh",
        "https://api.example.com/refresh/",
        "https://api.example.com/other",
        "https://api.example.com:8443/refresh",
        "https://user@api.example.com/refresh",
        "api.example.com/refresh",
        "/refresh",
        "wss://api.example.com/refresh",
        "",
    ] {
        let proof = key.proof_with(with(claims(), "htu", json!(htu)));
        assert_eq!(refusal(&proof), DpopError::UriMismatch, "{htu}");
    }
    assert_eq!(
        refusal(&key.proof_with(without(claims(), "htu"))),
        DpopError::UriMismatch
    );
}

#[test]
fn the_uri_is_compared_after_normalisation_and_without_query() {
    let key = DpopKey::es256();
    for htu in [
        "https://api.example.com/refresh",
        "HTTPS://API.Example.COM/refresh",
        "https://api.example.com:443/refresh",
        "https://api.example.com/%72efresh",
        "https://api.example.com/a/../refresh",
        "https://api.example.com/./refresh",
        "https://api.example.com/refresh?x=1",
        "https://api.example.com/refresh#top",
    ] {
        let proof = key.proof_with(with(claims(), "htu", json!(htu)));
        assert!(verdict(&proof).is_ok(), "{htu}");
    }
    // A query or fragment on the request is ignored too.
    let proof = key.proof_with(claims());
    assert!(verify_at(&config(), "POST", "/refresh?grant=x&y=1", &proof, NOW).is_ok());
    assert_eq!(
        verify_at(&config(), "POST", "/refresh/x", &proof, NOW),
        Err(DpopError::UriMismatch)
    );
    // Percent-encodings of reserved characters keep their meaning, whatever the case.
    let proof = key.proof_with(with(
        claims(),
        "htu",
        json!("https://api.example.com/a%2fb"),
    ));
    assert!(verify_at(&config(), "POST", "/a%2Fb", &proof, NOW).is_ok());
    assert_eq!(
        verify_at(&config(), "POST", "/a/b", &proof, NOW),
        Err(DpopError::UriMismatch)
    );
    // A non-default port in the origin counts.
    let on_port = DpopConfig::new().origin("http://LOCALHOST:8080/").unwrap();
    let proof = key.proof_with(with(
        claims(),
        "htu",
        json!("http://localhost:8080/refresh"),
    ));
    assert!(verify_at(&on_port, "POST", "/refresh", &proof, NOW).is_ok());
    assert_eq!(
        verify_at(&config(), "POST", "/refresh", &proof, NOW),
        Err(DpopError::UriMismatch)
    );
}

#[test]
fn without_an_origin_the_request_authority_is_used_under_either_scheme() {
    let key = DpopKey::es256();
    let host_config = DpopConfig::new();
    let run = |htu: &str, host: Option<&str>, uri: &str| {
        let mut headers = headers(&[&key.proof_with(with(claims(), "htu", json!(htu)))]);
        if let Some(host) = host {
            headers.append(http::header::HOST, HeaderValue::from_str(host).unwrap());
        }
        verify(
            &headers,
            &Method::POST,
            &uri.parse().unwrap(),
            &host_config,
            NOW,
        )
    };
    assert!(
        run(
            "https://api.example.com/refresh",
            Some("api.example.com"),
            "/refresh"
        )
        .is_ok()
    );
    assert!(
        run(
            "http://api.example.com/refresh",
            Some("api.example.com"),
            "/refresh"
        )
        .is_ok()
    );
    assert!(
        run(
            "https://api.example.com/refresh",
            Some("API.example.com:443"),
            "/refresh"
        )
        .is_ok()
    );
    assert!(
        run(
            "http://api.example.com:8080/refresh",
            Some("api.example.com:8080"),
            "/refresh"
        )
        .is_ok()
    );
    assert_eq!(
        run(
            "https://api.example.com/refresh",
            Some("other.example.com"),
            "/refresh"
        ),
        Err(DpopError::UriMismatch)
    );
    assert_eq!(
        run(
            "https://api.example.com/refresh",
            Some("api.example.com:8443"),
            "/refresh"
        ),
        Err(DpopError::UriMismatch)
    );
    assert_eq!(
        run("https://api.example.com/refresh", None, "/refresh"),
        Err(DpopError::UnknownTarget)
    );
    // The authority of an absolute request target (HTTP/2, or a proxy request) wins.
    assert!(
        run(
            "https://api.example.com/refresh",
            None,
            "https://api.example.com/refresh"
        )
        .is_ok()
    );
    // Two Host headers are ambiguous.
    let mut two = headers(&[&key.proof_with(claims())]);
    two.append(
        http::header::HOST,
        HeaderValue::from_static("api.example.com"),
    );
    two.append(
        http::header::HOST,
        HeaderValue::from_static("evil.example.com"),
    );
    assert_eq!(
        verify(
            &two,
            &Method::POST,
            &"/refresh".parse().unwrap(),
            &host_config,
            NOW
        ),
        Err(DpopError::UnknownTarget)
    );
}

#[test]
fn origins_are_validated() {
    for origin in [
        "https://api.example.com",
        "https://api.example.com/",
        "HTTP://[::1]:8080",
    ] {
        assert!(DpopConfig::new().origin(origin).is_ok(), "{origin}");
    }
    for origin in [
        "api.example.com",
        "ftp://api.example.com",
        "https://api.example.com/v1",
        "https://api.example.com?x",
        "https://api.example.com#x",
        "https://user@api.example.com",
        "https://api.example.com:99999",
        "https://",
    ] {
        assert_eq!(
            DpopConfig::new().origin(origin).unwrap_err(),
            InvalidOrigin,
            "{origin}"
        );
    }
    let origin = DpopConfig::new()
        .origin("HTTPS://API.example.com:443")
        .unwrap()
        .origin;
    assert_eq!(
        origin,
        Some(Origin {
            scheme: "https".into(),
            authority: "api.example.com".into()
        })
    );
}

#[test]
fn paths_normalise_as_rfc_3986_says() {
    for (path, normalised) in [
        ("", "/"),
        ("/", "/"),
        ("/a/b/c/./../../g", "/a/g"),
        ("/mid/content=5/../6", "/mid/6"),
        ("/a/b/..", "/a/"),
        ("/..", "/"),
        ("/%7euser/%41%2f", "/~user/A%2F"),
        ("/a%2e%2E/b", "/a../b"),
        ("/%2E%2E/b", "/b"),
    ] {
        assert_eq!(normalise_path(path).as_deref(), Some(normalised), "{path}");
    }
    assert_eq!(normalise_path("/a%2"), None);
    assert_eq!(normalise_path("/a%zz"), None);
}

#[test]
fn iat_must_be_within_max_age_and_clock_skew() {
    let key = DpopKey::es256();
    let at = |iat: Value| verdict(&key.proof_with(with(claims(), "iat", iat)));
    assert!(at(json!(NOW - 60)).is_ok());
    assert_eq!(at(json!(NOW - 61)), Err(DpopError::Expired));
    assert!(at(json!(NOW + 5)).is_ok());
    assert_eq!(at(json!(NOW + 6)), Err(DpopError::IssuedInFuture));
    assert_eq!(at(json!(NOW as f64 + 5.5)), Err(DpopError::IssuedInFuture));
    assert_eq!(at(json!(i64::MAX)), Err(DpopError::IssuedInFuture));
    assert_eq!(at(json!(i64::MIN)), Err(DpopError::Expired));
    assert_eq!(at(json!("now")), Err(DpopError::MissingIssuedAt));
    assert_eq!(
        verdict(&key.proof_with(without(claims(), "iat"))),
        Err(DpopError::MissingIssuedAt)
    );
    // Both bounds follow the configuration.
    let strict = config()
        .max_age(Duration::from_secs(10))
        .clock_skew(Duration::ZERO);
    let old = key.proof_with(with(claims(), "iat", json!(NOW - 11)));
    assert_eq!(
        verify_at(&strict, "POST", "/refresh", &old, NOW),
        Err(DpopError::Expired)
    );
    let ahead = key.proof_with(with(claims(), "iat", json!(NOW + 1)));
    assert_eq!(
        verify_at(&strict, "POST", "/refresh", &ahead, NOW),
        Err(DpopError::IssuedInFuture)
    );
}

#[test]
fn nonces_are_required_once_configured() {
    let nonces = DpopNonces::new(&[9; 32], Duration::from_secs(300));
    let config = config().nonces(nonces.clone());
    let key = DpopKey::es256();
    let proof = |nonce: Option<Value>| {
        let claims = match nonce {
            Some(nonce) => with(claims(), "nonce", nonce),
            None => claims(),
        };
        verify_at(&config, "POST", "/refresh", &key.proof_with(claims), NOW)
    };
    let fresh = nonces.issue(NOW);
    assert!(proof(Some(json!(fresh))).is_ok());
    assert_eq!(proof(None), Err(DpopError::MissingNonce));
    assert_eq!(proof(Some(json!("wrong"))), Err(DpopError::StaleNonce));
    assert_eq!(proof(Some(json!(7))), Err(DpopError::StaleNonce));
    // From the previous window: accepted. From the one before: stale.
    assert!(proof(Some(json!(nonces.issue(NOW - 300)))).is_ok());
    assert_eq!(
        proof(Some(json!(nonces.issue(NOW - 600)))),
        Err(DpopError::StaleNonce)
    );
    // Another secret's nonce, for the current window.
    let other = DpopNonces::new(&[8; 32], Duration::from_secs(300));
    assert_eq!(
        proof(Some(json!(other.issue(NOW)))),
        Err(DpopError::StaleNonce)
    );
    for error in [DpopError::MissingNonce, DpopError::StaleNonce] {
        assert!(error.needs_nonce());
        assert!(error.needs_nonce());
    }
}

#[test]
fn nonces_are_stateless_windowed_and_tamper_evident() {
    let secret = [3; 32];
    let window = Duration::from_secs(60);
    let (a, b) = (
        DpopNonces::new(&secret, window),
        DpopNonces::new(&secret, window),
    );
    // Two instances sharing the secret agree without talking to each other.
    let start = 1_700_000_040; // a multiple of 60
    let nonce = a.issue(start);
    assert_eq!(nonce, b.issue(start + 59));
    assert_ne!(nonce, a.issue(start + 60));
    assert_eq!(nonce.len(), 54);
    assert!(b.accepts(&nonce, start));
    assert!(b.accepts(&nonce, start + 119));
    assert!(!b.accepts(&nonce, start + 120));
    // A nonce from the next window is not accepted early.
    assert!(!b.accepts(&nonce, start - 1));
    // Any change to the window index or the tag is refused.
    let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
    bytes[7] ^= 1;
    assert!(!a.accepts(&URL_SAFE_NO_PAD.encode(&bytes), start));
    bytes[7] ^= 1;
    bytes[39] ^= 1;
    assert!(!a.accepts(&URL_SAFE_NO_PAD.encode(&bytes), start));
    assert!(!a.accepts(&URL_SAFE_NO_PAD.encode(&bytes[..39]), start));
    assert!(!a.accepts("", start));
    assert!(!a.accepts(&"A".repeat(1000), start));
    // Negative clocks and a zero window do not panic.
    let tiny = DpopNonces::new(&secret, Duration::ZERO);
    assert!(tiny.accepts(&tiny.issue(-5), -5));
    assert!(!format!("{a:?}").contains("3, 3"));
}

#[test]
fn errors_have_distinct_names_and_say_nothing_of_the_proof() {
    let all = [
        DpopError::MissingProof,
        DpopError::MultipleHeaders,
        DpopError::TooLarge,
        DpopError::Malformed,
        DpopError::WrongType,
        DpopError::CriticalHeader,
        DpopError::AlgorithmNotAllowed,
        DpopError::MissingKey,
        DpopError::PrivateKey,
        DpopError::UnusableKey,
        DpopError::InvalidSignature,
        DpopError::InvalidJti,
        DpopError::MethodMismatch,
        DpopError::UriMismatch,
        DpopError::UnknownTarget,
        DpopError::MissingIssuedAt,
        DpopError::Expired,
        DpopError::IssuedInFuture,
        DpopError::MissingNonce,
        DpopError::StaleNonce,
    ];
    let names: std::collections::HashSet<_> = all.iter().map(|e| e.name()).collect();
    assert_eq!(names.len(), all.len());
    let descriptions: std::collections::HashSet<_> = all.iter().map(|e| e.description()).collect();
    assert_eq!(descriptions.len(), all.len(), "one description per check");
    for error in all {
        let message = error.to_string();
        assert_eq!(message, error.description());
        assert!(!message.contains("eyJ"), "{message}");
        // RFC 6749 section 5.2's error_description characters, which also fit a
        // WWW-Authenticate quoted string.
        assert!(
            message
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
            "{message}"
        );
        assert!(
            crate::reply::rejection::RejectReason::description(error.reason()) != message,
            "{message} refines its reason's description"
        );
        if !error.needs_nonce() {
            assert!(!error.needs_nonce());
        }
    }
}

/// `key`'s proof of `claims` with its header's `alg` relabelled.
fn labelled(key: &DpopKey, alg: &str, claims: &Value) -> String {
    key.sign(&with(key.header(), "alg", json!(alg)), claims)
}

#[test]
fn ed25519_is_accepted_beside_eddsa_for_an_ed25519_key_only() {
    let ed = DpopKey::ed25519();
    // RFC 9864's name, as oauth4webapi and panva's dpop send it, and the older one:
    // the same key, the same binding.
    for alg in ["Ed25519", "EdDSA"] {
        let verified = verdict(&labelled(&ed, alg, &claims())).expect(alg);
        assert_eq!(verified.unwrap().thumbprint, ed.thumbprint(), "{alg}");
    }
    // `Ed25519` names one curve: an EC key, an RSA key or another OKP curve is no key
    // for it, even when the signature is the key's own.
    let ec = DpopKey::es256();
    assert_eq!(
        refusal(&labelled(&ec, "Ed25519", &claims())),
        DpopError::UnusableKey
    );
    let rsa = DpopKey::rs256();
    assert_eq!(
        refusal(&labelled(&rsa, "Ed25519", &claims())),
        DpopError::UnusableKey
    );
    let ed448 = with(
        with(ed.header(), "alg", json!("Ed25519")),
        "jwk",
        with(ed.public_jwk(), "crv", json!("Ed448")),
    );
    assert_eq!(refusal(&ed.sign(&ed448, &claims())), DpopError::UnusableKey);
    // An Ed25519 signature under another algorithm's name does not verify as one.
    assert_eq!(
        refusal(&labelled(&ed, "ES256", &claims())),
        DpopError::UnusableKey
    );
    // Names are case-sensitive (RFC 7515 section 4.1.1), and Ed448 is not supported.
    for alg in ["ed25519", "ED25519", "Ed448"] {
        assert_eq!(
            refusal(&labelled(&ed, alg, &claims())),
            DpopError::AlgorithmNotAllowed,
            "{alg}"
        );
    }
    // Both names follow EdDSA in the configuration.
    let without_eddsa = config().allowed_algorithms([Algorithm::ES256]);
    for alg in ["Ed25519", "EdDSA"] {
        assert_eq!(
            verify_at(
                &without_eddsa,
                "POST",
                "/refresh",
                &labelled(&ed, alg, &claims()),
                NOW
            ),
            Err(DpopError::AlgorithmNotAllowed),
            "{alg}"
        );
    }
}

#[test]
fn signing_algorithms_list_every_alg_a_proof_may_carry() {
    let defaults = DpopConfig::new().signing_algorithms();
    assert_eq!(defaults, ["ES256", "Ed25519", "EdDSA", "RS256", "PS256"]);
    // Every listed name is accepted from a key of its kind.
    let (es, ed, rs, ps) = (
        DpopKey::es256(),
        DpopKey::ed25519(),
        DpopKey::rs256(),
        DpopKey::ps256(),
    );
    for alg in &defaults {
        let key = match *alg {
            "ES256" => &es,
            "Ed25519" | "EdDSA" => &ed,
            "RS256" => &rs,
            _ => &ps,
        };
        assert!(verdict(&labelled(key, alg, &claims())).is_ok(), "{alg}");
    }
    // The list follows the configuration, and never names a symmetric algorithm.
    let custom = DpopConfig::new().allowed_algorithms([
        Algorithm::HS256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::PS512,
    ]);
    assert_eq!(
        custom.signing_algorithms(),
        ["ES384", "Ed25519", "EdDSA", "PS512"]
    );
    let none: [&str; 0] = [];
    assert_eq!(
        DpopConfig::new()
            .allowed_algorithms([])
            .signing_algorithms(),
        none
    );
}

/// The `error_description` and `WWW-Authenticate` of the layer's answer to `proof` on
/// `POST /refresh` under `config`, at the token endpoint or elsewhere, and the check
/// that refused it.
fn answer(
    config: &DpopConfig,
    proof: &str,
    token_endpoint: bool,
) -> (DpopError, String, Option<String>) {
    let error = read_proof(
        &headers(&[proof]),
        &Method::POST,
        &"/refresh".parse().unwrap(),
        config,
    )
    .expect_err("the proof is refused");
    let rejection = crate::reply::rejection::Rejection::new(
        error.reason(),
        http::StatusCode::UNAUTHORIZED,
        Duration::from_secs(1),
        token_endpoint,
    )
    .with_detail(error.describes(error.reason()));
    let response = rejection.default_response();
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    let challenge = response
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned());
    (
        error,
        body["error_description"].as_str().unwrap().to_owned(),
        challenge,
    )
}

#[test]
fn each_refusal_says_which_check_failed_without_echoing_the_proof() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = DpopKey::es256();
    let other = DpopKey::es256();
    let good = json!({"jti": "jti-secret-1", "htm": "POST", "htu": HTU, "iat": now});
    let nonces = DpopNonces::new(&[9; 32], Duration::from_secs(300));
    let with_nonces = config().nonces(nonces.clone());
    let signed = key.proof_with(good.clone());
    let (head, body, _) = crate::flow::jwt::compact_segments(&signed).unwrap();
    let forged_signature = format!("{head}.{body}.{}", URL_SAFE_NO_PAD.encode([7; 64]));
    let cases: Vec<(&str, DpopConfig, String, DpopError, &str)> = vec![
        (
            "an algorithm not supported",
            config().allowed_algorithms([Algorithm::EdDSA]),
            signed.clone(),
            DpopError::AlgorithmNotAllowed,
            "alg is not supported",
        ),
        (
            "alg none",
            config(),
            labelled(&key, "none", &good),
            DpopError::AlgorithmNotAllowed,
            "alg is not supported",
        ),
        (
            "a bad signature",
            config(),
            forged_signature,
            DpopError::InvalidSignature,
            "signature does not verify",
        ),
        (
            "another method",
            config(),
            key.proof_with(with(good.clone(), "htm", json!("GET"))),
            DpopError::MethodMismatch,
            "htm",
        ),
        (
            "another URI",
            config(),
            key.proof_with(with(
                good.clone(),
                "htu",
                json!("https://api.example.com/login"),
            )),
            DpopError::UriMismatch,
            "htu",
        ),
        (
            "an old iat",
            config(),
            key.proof_with(with(good.clone(), "iat", json!(now - 3600))),
            DpopError::Expired,
            "iat is too old",
        ),
        (
            "an iat in the future",
            config(),
            key.proof_with(with(good.clone(), "iat", json!(now + 3600))),
            DpopError::IssuedInFuture,
            "iat is in the future",
        ),
        (
            "no iat",
            config(),
            key.proof_with(without(good.clone(), "iat")),
            DpopError::MissingIssuedAt,
            "iat claim is missing",
        ),
        (
            "no jti",
            config(),
            key.proof_with(without(good.clone(), "jti")),
            DpopError::InvalidJti,
            "jti claim is missing",
        ),
        (
            "not a JWS",
            config(),
            "not-a-jws".to_owned(),
            DpopError::Malformed,
            "malformed",
        ),
        (
            "a header that is not JSON",
            config(),
            format!("{}.{body}.AAAA", URL_SAFE_NO_PAD.encode("{not json")),
            DpopError::Malformed,
            "malformed",
        ),
        (
            "another typ",
            config(),
            key.sign(&with(key.header(), "typ", json!("JWT")), &good),
            DpopError::WrongType,
            "typ",
        ),
        (
            "no jwk",
            config(),
            key.sign(&without(key.header(), "jwk"), &good),
            DpopError::MissingKey,
            "no jwk",
        ),
        (
            "a jwk of another key type",
            config(),
            key.sign(
                &with(key.header(), "jwk", DpopKey::ed25519().public_jwk()),
                &good,
            ),
            DpopError::UnusableKey,
            "jwk is not a public key",
        ),
        (
            "a private jwk",
            config(),
            key.sign(
                &with(
                    key.header(),
                    "jwk",
                    with(key.public_jwk(), "d", json!("AQAB")),
                ),
                &good,
            ),
            DpopError::PrivateKey,
            "private key",
        ),
        (
            "another key's jwk",
            config(),
            key.sign(&with(key.header(), "jwk", other.public_jwk()), &good),
            DpopError::InvalidSignature,
            "signature does not verify",
        ),
        (
            "no nonce",
            with_nonces.clone(),
            signed.clone(),
            DpopError::MissingNonce,
            "no nonce",
        ),
        (
            "a nonce of another server",
            with_nonces,
            key.proof_with(with(
                good.clone(),
                "nonce",
                json!(DpopNonces::new(&[1; 32], Duration::from_secs(300)).issue(now)),
            )),
            DpopError::StaleNonce,
            "nonce is invalid or stale",
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (what, config, proof, expected, says) in cases {
        for token_endpoint in [false, true] {
            let (error, description, challenge) = answer(&config, &proof, token_endpoint);
            assert_eq!(error, expected, "{what}");
            assert_eq!(description, expected.description(), "{what}");
            assert!(description.contains(says), "{what}: {description}");
            // Nothing of the proof: no segment of it, no claim value, no key member.
            for part in proof.split('.').filter(|part| part.len() > 3) {
                assert!(!description.contains(part), "{what}");
            }
            for echoed in ["jti-secret-1", "eyJ", "api.example.com"] {
                assert!(!description.contains(echoed), "{what}: {description}");
            }
            let x = key.public_jwk()["x"].as_str().unwrap().to_owned();
            assert!(!description.contains(&x), "{what}");
            // RFC 9449 section 7.1's challenge away from the token endpoint, with the
            // same description; none at the token endpoint (RFC 6749 section 5.2).
            let code = expected.reason().class().error_code();
            let expected_challenge = (!token_endpoint)
                .then(|| format!("DPoP error=\"{code}\", error_description=\"{description}\""));
            assert_eq!(challenge, expected_challenge, "{what}");
        }
        seen.insert(expected.name());
    }
    assert!(seen.len() >= 14, "{seen:?}");
    // Without a check (a customiser's own rejection), the reason's description.
    let plain = crate::reply::rejection::Rejection::new(
        crate::reply::rejection::RejectReason::InvalidDpopProof,
        http::StatusCode::UNAUTHORIZED,
        Duration::from_secs(1),
        false,
    );
    assert_eq!(plain.description(), "the DPoP proof is invalid");
    // A check describes only the reason it led to.
    use crate::reply::rejection::RejectReason;
    assert_eq!(
        DpopError::Expired.describes(RejectReason::DpopKeyMismatch),
        None
    );
    assert_eq!(
        DpopError::MissingNonce.describes(RejectReason::InvalidDpopProof),
        None
    );
    assert_eq!(
        DpopError::MissingNonce.describes(RejectReason::DpopNonceRequired),
        Some(DpopError::MissingNonce.description())
    );
}
