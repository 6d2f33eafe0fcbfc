// The sessions page. The refresh token lives in an HttpOnly cookie this script cannot read;
// the access token lives in this variable only (never in storage), and is renewed before it
// expires by POST /web/refresh, which rotates the cookie.
//
// The session is bound to a key this browser holds (DPoP, RFC 9449): sign-in and every
// renewal carry a proof signed by it, and the server refuses the cookie without one, so a
// copied cookie is useless elsewhere.
"use strict";

const RENEW_AT = 0.75; // renew once three quarters of the access token's life have passed

let access = null; // { token, user, expiresAt }
let renewTimer = null;
let refreshes = 0;

const $ = (id) => document.getElementById(id);

// ---- DPoP ----
// A P-256 key pair made with `extractable: false`: scripts can sign with the private key
// but never read it, so script injected into the page can use it only there, while the page
// is open, and cannot take it elsewhere. IndexedDB keeps the CryptoKey objects themselves (they are
// structured-cloneable), so the key survives reloads and every tab of this origin uses it.
const KEY_DB = "sessions-page";
const KEY_STORE = "dpop";
const KEY_ID = "key";

let dpopKey = null; // { privateKey, jwk }

function keyStore(mode, use) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(KEY_DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(KEY_STORE);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(KEY_STORE, mode);
      let result;
      use(tx.objectStore(KEY_STORE), (value) => { result = value; });
      tx.oncomplete = () => { db.close(); resolve(result); };
      tx.onerror = tx.onabort = () => { db.close(); reject(tx.error); };
    };
  });
}

const loadPair = () => keyStore("readonly", (store, done) => {
  store.get(KEY_ID).onsuccess = (e) => done(e.target.result);
});

// Keeps the first key stored: two tabs creating one at once both end up with the same
// (readwrite transactions on a store run one after the other).
const storePair = (pair) => keyStore("readwrite", (store, done) => {
  store.get(KEY_ID).onsuccess = (e) => {
    if (e.target.result) return done(e.target.result);
    store.put(pair, KEY_ID);
    done(pair);
  };
});

// This browser's key; `create` makes one when there is none (at sign-in only: a renewal
// without the key would be refused anyway).
async function signingKey(create) {
  if (dpopKey) return dpopKey;
  let pair = await loadPair().catch(() => undefined);
  if (!pair && create) {
    const fresh = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    pair = await storePair(fresh);
  }
  if (!pair) return null;
  // A public key is always exportable. The proof carries the members an EC public key has
  // (the export adds `key_ops` and `ext`, which are no part of the key).
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  dpopKey = { privateKey: pair.privateKey, jwk: { kty, crv, x, y } };
  return dpopKey;
}

function base64url(bytes) {
  let binary = "";
  for (const b of new Uint8Array(bytes)) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const jsonPart = (value) => base64url(new TextEncoder().encode(JSON.stringify(value)));

// The `DPoP` header for one request: a fresh jti each time (the server accepts a proof once).
// WebCrypto's ECDSA signature is already the raw r || s that ES256 wants.
async function proof(key, method, path) {
  const header = jsonPart({ typ: "dpop+jwt", alg: "ES256", jwk: key.jwk });
  const claims = jsonPart({
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    htm: method,
    htu: location.origin + path,
    iat: Math.floor(Date.now() / 1000),
  });
  const input = new TextEncoder().encode(header + "." + claims);
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, input);
  return header + "." + claims + "." + base64url(signature);
}

// Headers with this browser's proof for `method` `path`, when it has a key.
async function withProof(method, path, headers = {}, create = false) {
  const key = await signingKey(create);
  return key ? { ...headers, DPoP: await proof(key, method, path) } : headers;
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

function show(state) {
  document.body.dataset.state = state;
  $("signed-in").hidden = state !== "signed-in";
  $("signed-out").hidden = state !== "signed-out";
}

function signedOut(text) {
  access = null;
  clearTimeout(renewTimer);
  $("sessions").replaceChildren();
  show("signed-out");
  if (text) say(text);
}

function accept(body) {
  access = { token: body.access_token, user: body.user, expiresAt: Date.now() + body.expires_in * 1000 };
  $("user").textContent = body.user;
  clearTimeout(renewTimer);
  renewTimer = setTimeout(renew, Math.max(1000, body.expires_in * 1000 * RENEW_AT));
  show("signed-in");
}

// One renewal at a time per tab; other tabs may renew at the same moment with the same
// cookie: the server's grace window gives all of them the same new cookie.
let renewing = null;
function renew() {
  if (!renewing) {
    renewing = doRenew().finally(() => { renewing = null; });
  }
  return renewing;
}

async function doRenew() {
  let response;
  try {
    const headers = await withProof("POST", "/web/refresh");
    response = await fetch("/web/refresh", { method: "POST", credentials: "same-origin", headers });
  } catch (e) {
    return retrySoon("network error while renewing the session");
  }
  if (response.status === 503) {
    return retrySoon("the session store is unavailable");
  }
  if (!response.ok) {
    const reason = await response.json().catch(() => ({}));
    signedOut(access ? "You were signed out: " + (reason.error_description || "session ended") : "");
    return false;
  }
  accept(await response.json());
  refreshes += 1;
  $("renewal").dataset.refreshes = String(refreshes);
  $("renewal").textContent = "renewed " + refreshes + "× · access token valid until " + new Date(access.expiresAt).toLocaleTimeString();
  await loadSessions();
  return true;
}

function retrySoon(text) {
  say(text + "; retrying", true);
  clearTimeout(renewTimer);
  renewTimer = setTimeout(renew, 2000);
  return false;
}

async function api(method, path) {
  if (!access) return null;
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { Authorization: "Bearer " + access.token },
  });
  if (response.status === 401) {
    // The access token is gone or stale: renew once, then try again.
    if (!(await renew())) return null;
    return fetch(path, { method, credentials: "same-origin", headers: { Authorization: "Bearer " + access.token } });
  }
  return response;
}

const when = (iso) => new Date(iso).toLocaleString();

// "Chrome on Linux" from a user agent; the full string stays in the cell's tooltip.
function describe(ua) {
  if (!ua) return "unknown device";
  const browser = [["Edg/", "Edge"], ["Firefox/", "Firefox"], ["HeadlessChrome/", "Headless Chrome"],
    ["Chrome/", "Chrome"], ["Safari/", "Safari"], ["curl/", "curl"]].find(([token]) => ua.includes(token));
  const os = [["Android", "Android"], ["iPhone", "iOS"], ["iPad", "iPadOS"], ["Windows", "Windows"],
    ["Mac OS", "macOS"], ["Linux", "Linux"]].find(([token]) => ua.includes(token));
  if (!browser) return ua.slice(0, 40);
  return browser[1] + (os ? " on " + os[1] : "");
}

async function loadSessions() {
  const response = await api("GET", "/web/sessions");
  if (!response || !response.ok) return;
  const sessions = await response.json();
  const rows = sessions.map((s) => {
    const row = document.createElement("tr");
    row.dataset.family = s.family;
    if (s.this_device) row.dataset.thisDevice = "true";
    const device = document.createElement("td");
    device.textContent = describe(s.device);
    device.title = s.device || "";
    if (s.this_device) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "this device";
      device.append(badge);
    }
    const cells = [s.created_at, s.last_rotated_at, s.expires_at].map((t) => {
      const td = document.createElement("td");
      td.textContent = when(t);
      return td;
    });
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.className = "danger revoke";
    button.type = "button";
    button.textContent = "Revoke";
    button.addEventListener("click", () => revoke(s.family, s.this_device));
    action.append(button);
    row.append(device, ...cells, action);
    return row;
  });
  $("sessions").replaceChildren(...rows);
}

async function revoke(family, thisDevice) {
  const response = await api("DELETE", "/web/sessions/" + encodeURIComponent(family));
  if (response && (response.ok || response.status === 404)) {
    if (thisDevice) return signedOut("This session was revoked.");
    say("Session revoked.");
    await loadSessions();
  } else if (response) {
    say("Could not revoke the session (" + response.status + ").", true);
  }
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  let headers;
  try {
    headers = await withProof("POST", "/web/login", { "Content-Type": "application/json" }, true);
  } catch (e) {
    say("This browser cannot keep a signing key (" + e.name + ").", true);
    return;
  }
  const response = await fetch("/web/login", {
    method: "POST",
    credentials: "same-origin",
    headers,
    body: JSON.stringify({ username: $("username").value, password: $("password").value }),
  });
  if (!response.ok) {
    say(response.status === 401 ? "Wrong username or password." : "Sign-in failed (" + response.status + ").", true);
    return;
  }
  $("password").value = "";
  say("");
  accept(await response.json());
  await loadSessions();
});

$("renew").addEventListener("click", () => renew());

$("sign-out").addEventListener("click", async () => {
  await fetch("/web/logout", { method: "POST", credentials: "same-origin" });
  signedOut("Signed out.");
});

$("logout-all").addEventListener("click", async () => {
  const response = await api("POST", "/web/logout-all");
  if (!response || !response.ok) return say("Could not log out everywhere.", true);
  const { revoked } = await response.json();
  await fetch("/web/logout", { method: "POST", credentials: "same-origin" });
  signedOut("Logged out everywhere (" + revoked + " session" + (revoked === 1 ? "" : "s") + ").");
});

// A fresh page has no access token: the cookie, if any, gets one.
renew().then((ok) => { if (!ok && !access) signedOut(); });
