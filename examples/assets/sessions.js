// The sessions page. The refresh token lives in an HttpOnly cookie this script cannot read;
// the access token lives in this variable only (never in storage), and is renewed before it
// expires by POST /web/refresh, which rotates the cookie.
"use strict";

const RENEW_AT = 0.75; // renew once three quarters of the access token's life have passed

let access = null; // { token, user, expiresAt }
let renewTimer = null;
let refreshes = 0;

const $ = (id) => document.getElementById(id);

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
    response = await fetch("/web/refresh", { method: "POST", credentials: "same-origin" });
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
  const response = await fetch("/web/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
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
