// DPoP clients (RFC 9449) for the OAuth 2.0 token endpoint example, on the two most used
// JavaScript libraries: oauth4webapi (a whole OAuth client) and panva's `dpop` (proofs
// only, requests made here with fetch).
//
//     node tests/dpop_node/client.mjs http://127.0.0.1:3000 oauth4webapi
//     node tests/dpop_node/client.mjs http://127.0.0.1:3000 dpop
//
// The libraries make the keys (WebCrypto), sign every proof and compute the thumbprints, so
// the layer is checked against code it did not grow up with. For each key type, Ed25519
// (which both label "alg":"Ed25519", RFC 9864's name) and ES256, the client logs in with
// the password grant and a proof, refreshes twice with fresh proofs, and checks the
// refusals and their error_description. It prints a JSON summary and exits 1 on the first
// failed check, 2 when the libraries are not installed (`npm ci --prefix tests/dpop_node`,
// which scripts/test runs).

const [base, library] = process.argv.slice(2);
if (!base || !['oauth4webapi', 'dpop'].includes(library)) {
  console.error('usage: client.mjs BASE_URL oauth4webapi|dpop');
  process.exit(2);
}

let lib;
try {
  lib = await import(library);
} catch (error) {
  console.error(
    `client.mjs: ${library} is not installed: npm ci --prefix tests/dpop_node (${error.message})`,
  );
  process.exit(2);
}

const CLIENT_ID = 'demo-client';
const CLIENT_SECRET = 'demo-secret';
const ALGORITHMS = ['Ed25519', 'ES256'];

// The layer's descriptions of the refusals checked here: the client learns which check
// failed, and nothing of its proof or token comes back.
const KEY_MISMATCH = 'the DPoP proof is not signed by the key the refresh token is bound to';
const REPLAYED = "the DPoP proof's jti was used before: sign a fresh proof for each request";
const TOO_OLD = "the DPoP proof's iat is too old: sign a fresh proof for each request";
const WRONG_HTM = "the DPoP proof's htm claim is missing or not the request's method";
const WRONG_HTU = "the DPoP proof's htu claim is missing or not the request's URI";

class Failed extends Error {}

function check(condition, what) {
  if (!condition) throw new Failed(what);
}

function decodeSegment(jws, index) {
  return JSON.parse(Buffer.from(jws.split('.')[index], 'base64url').toString());
}

const summary = { library, algorithms: {} };

// A refusal as the token endpoint answers it: 400 invalid_dpop_proof with `description`,
// which says nothing of the proof or the token.
function refused(status, body, description, secrets, what) {
  check(status === 400, `${what}: expected 400, got ${status} ${JSON.stringify(body)}`);
  check(body.error === 'invalid_dpop_proof', `${what}: error ${JSON.stringify(body)}`);
  check(
    body.error_description === description,
    `${what}: error_description ${JSON.stringify(body.error_description)}, expected ${JSON.stringify(description)}`,
  );
  for (const secret of secrets) {
    check(!body.error_description.includes(secret), `${what}: the description echoes a secret`);
  }
}

async function withOauth4webapi(alg) {
  const oauth = lib;
  const checks = [];
  const labels = new Set();
  // Every request goes through here, so the proof's alg as sent is recorded.
  const recordingFetch = (url, init) => {
    const proof = init?.headers?.dpop;
    if (proof) labels.add(decodeSegment(proof, 0).alg);
    return fetch(url, init);
  };
  const options = (DPoP) => ({
    DPoP,
    [oauth.allowInsecureRequests]: true,
    [oauth.customFetch]: recordingFetch,
  });

  const issuer = new URL(base);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, {
      algorithm: 'oauth2',
      [oauth.allowInsecureRequests]: true,
    }),
  );
  check(
    Array.isArray(as.dpop_signing_alg_values_supported) &&
      as.dpop_signing_alg_values_supported.includes(alg),
    `metadata: dpop_signing_alg_values_supported ${JSON.stringify(as.dpop_signing_alg_values_supported)} lacks ${alg}`,
  );
  checks.push(`the metadata lists ${alg}`);

  const client = { client_id: CLIENT_ID };
  const auth = oauth.ClientSecretBasic(CLIENT_SECRET);
  const keyPair = await oauth.generateKeyPair(alg);
  const DPoP = oauth.DPoP(client, keyPair);
  const thumbprint = await DPoP.calculateThumbprint();

  const granted = (tokens, what) => {
    check(tokens.token_type === 'dpop', `${what}: token_type ${tokens.token_type}`);
    const cnf = decodeSegment(tokens.access_token, 1).cnf;
    check(cnf?.jkt === thumbprint, `${what}: cnf ${JSON.stringify(cnf)} is not ${thumbprint}`);
    check(typeof tokens.refresh_token === 'string', `${what}: no refresh token`);
    checks.push(what);
    return tokens.refresh_token;
  };
  const refresh = async (token, handle) =>
    oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, auth, token, options(handle)),
    );
  // The server's refusal as oauth4webapi reports it: (status, body).
  const refusal = async (token, handle) => {
    try {
      await refresh(token, handle);
    } catch (error) {
      if (error instanceof oauth.ResponseBodyError) return [error.status, error.cause];
      throw error;
    }
    throw new Failed('the refresh was granted');
  };

  const login = await oauth.processGenericTokenEndpointResponse(
    as,
    client,
    await oauth.genericTokenEndpointRequest(
      as,
      client,
      auth,
      'password',
      new URLSearchParams({ username: `node-${alg}`, password: 'demo' }),
      options(DPoP),
    ),
  );
  let token = granted(login, 'login with a proof: DPoP, cnf.jkt is the key thumbprint');
  for (const i of [1, 2]) {
    token = granted(await refresh(token, DPoP), `refresh ${i} with a fresh proof`);
  }

  // Another key's proof: the copied token is refused, and says why.
  const thief = oauth.DPoP(client, await oauth.generateKeyPair(alg));
  const [status, body] = await refusal(token, thief);
  refused(status, body, KEY_MISMATCH, [token], 'refresh with a proof by another key');
  checks.push('refresh with a proof by another key: key mismatch');

  // A proof signed an hour ago by the right key.
  const stale = oauth.DPoP(client, keyPair, {
    [oauth.modifyAssertion]: (_header, payload) => {
      payload.iat -= 3600;
    },
  });
  const [oldStatus, oldBody] = await refusal(token, stale);
  refused(oldStatus, oldBody, TOO_OLD, [token], 'refresh with an hour-old proof');
  checks.push('refresh with an hour-old proof: iat too old');

  // Neither refusal spent anything: the owner goes on.
  token = granted(await refresh(token, DPoP), 'the owner refreshes after the refusals');

  check(
    labels.size === 1 && labels.has(alg),
    `the proofs were labelled ${JSON.stringify([...labels])}, expected ${alg}`,
  );
  return { proof_alg: [...labels][0], checks };
}

async function withDpop(alg) {
  const dpop = lib;
  const checks = [];
  const labels = new Set();
  const url = `${base.replace(/\/$/, '')}/token`;
  const basic = Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64');

  const post = async (form, proof) => {
    labels.add(decodeSegment(proof, 0).alg);
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
        dpop: proof,
      },
      body: new URLSearchParams(form),
      signal: AbortSignal.timeout(10_000),
    });
    return [response.status, await response.json()];
  };

  const keyPair = await dpop.generateKeyPair(alg);
  const thumbprint = await dpop.calculateThumbprint(keyPair.publicKey);
  const proof = (htm = 'POST', htu = url) => dpop.generateProof(keyPair, htu, htm);

  const granted = ([status, body], what) => {
    check(status === 200, `${what}: expected 200, got ${status} ${JSON.stringify(body)}`);
    check(body.token_type === 'DPoP', `${what}: token_type ${body.token_type}`);
    const cnf = decodeSegment(body.access_token, 1).cnf;
    check(cnf?.jkt === thumbprint, `${what}: cnf ${JSON.stringify(cnf)} is not ${thumbprint}`);
    checks.push(what);
    return body.refresh_token;
  };
  const refreshForm = (token) => ({ grant_type: 'refresh_token', refresh_token: token });

  let token = granted(
    await post({ grant_type: 'password', username: `dpop-${alg}`, password: 'demo' }, await proof()),
    'login with a proof: DPoP, cnf.jkt is the key thumbprint',
  );
  for (const i of [1, 2]) {
    token = granted(await post(refreshForm(token), await proof()), `refresh ${i} with a fresh proof`);
  }

  // Proofs for another method, for another URI, and one proof twice.
  const [s1, b1] = await post(refreshForm(token), await proof('GET'));
  refused(s1, b1, WRONG_HTM, [token], 'a proof for GET');
  checks.push('a proof for GET: htm');
  const [s2, b2] = await post(refreshForm(token), await proof('POST', `${base}/revoke`));
  refused(s2, b2, WRONG_HTU, [token], 'a proof for /revoke');
  checks.push('a proof for /revoke: htu');
  const once = await proof();
  token = granted(await post(refreshForm(token), once), 'refresh with a proof, first use');
  const [s3, b3] = await post(refreshForm(token), once);
  refused(s3, b3, REPLAYED, [token, once], 'the same proof again');
  checks.push('the same proof again: jti spent');

  token = granted(await post(refreshForm(token), await proof()), 'the owner refreshes after the refusals');

  check(
    labels.size === 1 && labels.has(alg),
    `the proofs were labelled ${JSON.stringify([...labels])}, expected ${alg}`,
  );
  return { proof_alg: [...labels][0], checks };
}

let current;
try {
  for (const alg of ALGORITHMS) {
    current = alg;
    summary.algorithms[alg] =
      library === 'oauth4webapi' ? await withOauth4webapi(alg) : await withDpop(alg);
  }
} catch (error) {
  // A library's own error (a refused request among them) with what the server said.
  const failed =
    error instanceof Failed
      ? error.message
      : `${error.name}: ${error.message} ${JSON.stringify(error.cause ?? null)}`;
  console.log(
    JSON.stringify({ ok: false, library, alg: current, failed, done: summary.algorithms }, null, 2),
  );
  process.exit(1);
}
summary.ok = true;
console.log(JSON.stringify(summary, null, 2));
