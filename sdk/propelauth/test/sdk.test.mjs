// PropelAuth's real Node SDK (@propelauth/node-apis, pinned in package-lock.json)
// against a running keygate: every row of shared/PROPELAUTH.md's contract table.
// Started by propelauth_test.go (go test -run TestPropelAuthSDK .), which passes
// KEYGATE_ADMIN_URL, KEYGATE_ADMIN_TOKEN and KEYGATE_PROXY_URL.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  getApis,
  ApiKeyCreateException,
  ApiKeyFetchException,
  ApiKeyImportException,
  ApiKeyUpdateException,
  ApiKeyValidateException,
  ApiKeyValidateRateLimitedException,
  OrgMemberInfo,
} from "@propelauth/node-apis";
import { routePropelAuthTo } from "../keygate-fetch.mjs";

const ADMIN = required("KEYGATE_ADMIN_URL");
const TOKEN = required("KEYGATE_ADMIN_TOKEN");
const PROXY = required("KEYGATE_PROXY_URL");

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through go test -run TestPropelAuthSDK .`);
  return v;
}

const rawFetch = globalThis.fetch;
const authUrl = new URL("https://auth.example.com");
const apis = getApis(authUrl, TOKEN);
let unroute;

// admin calls keygate's native admin API (not through the SDK) for fixtures.
async function admin(method, path, body) {
  const res = await rawFetch(ADMIN + path, {
    method,
    headers: { Authorization: "Bearer " + TOKEN, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// proxied sends one request through keygate's proxy port with token.
async function proxied(token) {
  const res = await rawFetch(PROXY + "/hello", { headers: { Authorization: "Bearer " + token } });
  return { status: res.status, body: await res.json() };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const utcDate = () => new Date().toISOString().slice(0, 10);
const HEX32 = /^[0-9a-f]{32}$/;

// waitFor polls fn until it returns true: usage reaches the store in batches.
async function waitFor(what, fn) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const last = await fn();
    if (last === true) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// rejectsField checks that p rejects with cls whose fieldToErrors names field.
async function rejectsField(p, cls, field) {
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof cls, `want ${cls.name}, got ${err.constructor.name}: ${err.message}`);
    assert.ok(
      Array.isArray(err.fieldToErrors[field]) && err.fieldToErrors[field].length > 0 && typeof err.fieldToErrors[field][0] === "string",
      `fieldToErrors ${JSON.stringify(err.fieldToErrors)} should name ${field}`,
    );
    return true;
  });
}

before(async () => {
  unroute = routePropelAuthTo(ADMIN);
  await admin("PUT", "/v1/users/alice", { email: "alice@example.com", metadata: { team_name: "x" } });
  await admin("PUT", "/v1/users/bob", { email: "bob@example.com" });
  await admin("PUT", "/v1/users/pager", { email: "Pager@Example.com" });
  await admin("PUT", "/v1/users/counter", { email: "counter@example.com" });
  await admin("PUT", "/v1/users/limited", { email: "limited@example.com", rate_limit: { limit: 2, window: "1h" } });
  await admin("PUT", "/v1/orgs/acme", { name: "Acme Inc", metadata: { billing_tier: "gold" } });
  await admin("PUT", "/v1/orgs/acme/members/alice", { role: "Admin" });
  await admin("PUT", "/v1/orgs/acme/members/counter", { role: "Member" });
  await admin("PUT", "/v1/orgs/eu_team", { name: "EU team" });
  await admin("PUT", "/v1/orgs/eu_team/members/alice", { role: "Owner" });
});

after(() => unroute());

test("createApiKey and fetchApiKey: personal, org, generic keys", async () => {
  const expires = nowSeconds() + 3600;
  const personal = await apis.createApiKey({ userId: "alice", expiresAtSeconds: expires, metadata: { plan_tier: "pro" }, displayName: "CI key" });
  assert.deepEqual(Object.keys(personal).sort(), ["apiKeyId", "apiKeyToken"]);
  assert.match(personal.apiKeyId, HEX32);
  assert.match(personal.apiKeyToken, /^kgp_/);

  const rec = await apis.fetchApiKey(personal.apiKeyId);
  assert.ok(Math.abs(rec.createdAt - nowSeconds()) < 60 && Number.isInteger(rec.createdAt), `createdAt ${rec.createdAt}`);
  assert.deepEqual(rec, {
    apiKeyId: personal.apiKeyId,
    createdAt: rec.createdAt,
    expiresAtSeconds: expires,
    metadata: { plan_tier: "pro" }, // passes through, not camelCased
    userId: "alice",
    orgId: null,
    displayName: "CI key",
  });
  // The SDK accepts upper-case hex ids.
  assert.equal((await apis.fetchApiKey(personal.apiKeyId.toUpperCase())).apiKeyId, personal.apiKeyId);

  const org = await apis.createApiKey({ orgId: "acme", userId: "alice" });
  assert.match(org.apiKeyToken, /^kgo_/);
  const orgRec = await apis.fetchApiKey(org.apiKeyId);
  assert.equal(orgRec.orgId, "acme");
  assert.equal(orgRec.userId, "alice");
  assert.equal(orgRec.expiresAtSeconds, null);
  assert.deepEqual(orgRec.metadata, {});

  const orgOnly = await apis.fetchApiKey((await apis.createApiKey({ orgId: "acme" })).apiKeyId);
  assert.equal(orgOnly.userId, null);
  assert.equal(orgOnly.orgId, "acme");

  const generic = await apis.createApiKey({});
  assert.match(generic.apiKeyToken, /^kgg_/);
  const genRec = await apis.fetchApiKey(generic.apiKeyId);
  assert.equal(genRec.userId, null);
  assert.equal(genRec.orgId, null);
});

test("createApiKey errors: ApiKeyCreateException.fieldToErrors", async () => {
  await rejectsField(apis.createApiKey({ userId: "nobody" }), ApiKeyCreateException, "user_id");
  await rejectsField(apis.createApiKey({ orgId: "nowhere" }), ApiKeyCreateException, "org_id");
  await rejectsField(apis.createApiKey({ orgId: "acme", userId: "bob" }), ApiKeyCreateException, "user_id"); // not a member
  await rejectsField(apis.createApiKey({ userId: "alice", expiresAtSeconds: nowSeconds() - 10 }), ApiKeyCreateException, "expires_at_seconds");
  await admin("PUT", "/v1/users/blocked", { email: "blocked@example.com", enabled: false });
  await rejectsField(apis.createApiKey({ userId: "blocked" }), ApiKeyCreateException, "user_id");
});

test("fetchApiKey errors: unknown id, and the SDK's own check of non-hex ids", async () => {
  await assert.rejects(apis.fetchApiKey("f".repeat(32)), { message: "Unknown error when creating the end user api key" });
  // The SDK's client-side check JSON.parses its own message (PROPELAUTH.md, point 1).
  assert.throws(() => apis.fetchApiKey("not-hex"), SyntaxError);
});

test("validateApiKey, validatePersonalApiKey, validateOrgApiKey: the full shapes", async () => {
  const personal = await apis.createApiKey({ userId: "alice", metadata: { scope: "me" } });
  const org = await apis.createApiKey({ orgId: "acme", userId: "alice", metadata: { scope: "read" } });
  const orgOnly = await apis.createApiKey({ orgId: "acme" });
  const generic = await apis.createApiKey({ metadata: { service: "batch" } });

  const pv = await apis.validateApiKey(personal.apiKeyToken);
  assert.equal(pv.org, null);
  assert.equal(pv.userInOrg, null);
  assert.equal(pv.userId, "alice");
  assert.equal(pv.orgId, null);
  assert.deepEqual(pv.metadata, { scope: "me" });
  const u = pv.user;
  assert.equal(u.userId, "alice");
  assert.equal(u.email, "alice@example.com");
  for (const [field, want] of Object.entries({ emailConfirmed: true, hasPassword: false, locked: false, enabled: true, mfaEnabled: false, canCreateOrgs: false })) {
    assert.equal(u[field], want, field);
  }
  assert.ok(Number.isInteger(u.createdAt) && Number.isInteger(u.lastActiveAt));
  assert.deepEqual(u.metadata, { team_name: "x" });
  const info = u.orgIdToOrgInfo.acme;
  assert.ok(info instanceof OrgMemberInfo, "orgIdToOrgInfo values are OrgMemberInfo");
  assert.equal(info.orgName, "Acme Inc");
  assert.equal(info.urlSafeOrgName, "acme-inc");
  assert.deepEqual(info.orgMetadata, { billing_tier: "gold" });
  assert.ok(info.isRole("Admin") && info.isAtLeastRole("Admin") && !info.isRole("Owner") && !info.hasPermission("anything"));
  // The SDK camelCases every key outside metadata, org ids used as map keys
  // included (README, "Moving from PropelAuth"); the value's orgId is intact.
  assert.deepEqual(Object.keys(u.orgIdToOrgInfo).sort(), ["acme", "euTeam"]);
  assert.equal(u.orgIdToOrgInfo.euTeam.orgId, "eu_team");
  assert.ok(u.orgIdToOrgInfo.euTeam.isRole("Owner"));

  const personalOnly = await apis.validatePersonalApiKey("Bearer " + personal.apiKeyToken); // the SDK strips Bearer
  assert.deepEqual(Object.keys(personalOnly).sort(), ["metadata", "user"]);
  assert.equal(personalOnly.user.userId, "alice");
  await assert.rejects(apis.validateOrgApiKey(personal.apiKeyToken), (err) => {
    assert.ok(err instanceof ApiKeyValidateException);
    assert.deepEqual(err.fieldToErrors, { api_key_token: ["Not an org API Key"] });
    return true;
  });

  const ov = await apis.validateOrgApiKey(org.apiKeyToken);
  assert.equal(ov.org.orgId, "acme");
  assert.equal(ov.org.name, "Acme Inc");
  assert.equal(ov.org.orgName, "Acme Inc");
  assert.equal(ov.org.isSamlConfigured, false);
  assert.deepEqual(ov.org.metadata, { billing_tier: "gold" });
  assert.equal(ov.user.userId, "alice");
  assert.deepEqual(ov.metadata, { scope: "read" });
  assert.ok(ov.userInOrg instanceof OrgMemberInfo);
  assert.equal(ov.userInOrg.orgId, "acme");
  assert.equal(ov.userInOrg.assignedRole, "Admin");
  assert.deepEqual(ov.userInOrg.inheritedRolesPlusCurrentRole, ["Admin"]);
  assert.deepEqual(ov.userInOrg.permissions, []);
  assert.ok(ov.userInOrg.isAtLeastRole("Admin") && ov.userInOrg.hasAllPermissions([]));
  await assert.rejects(apis.validatePersonalApiKey(org.apiKeyToken), { message: JSON.stringify({ api_key_token: ["Not a personal API Key"] }) });

  const nov = await apis.validateOrgApiKey(orgOnly.apiKeyToken);
  assert.equal(nov.user, null);
  assert.equal(nov.userInOrg, null);
  assert.equal(nov.org.orgId, "acme");

  const gv = await apis.validateApiKey(generic.apiKeyToken);
  assert.equal(gv.user, null);
  assert.equal(gv.org, null);
  assert.equal(gv.userInOrg, null);
  assert.deepEqual(gv.metadata, { service: "batch" });
  await assert.rejects(apis.validatePersonalApiKey(generic.apiKeyToken), ApiKeyValidateException);
  await assert.rejects(apis.validateOrgApiKey(generic.apiKeyToken), ApiKeyValidateException);
});

test("validateApiKey errors: ApiKeyValidateException for unknown, malformed, archived, expired, blocked", async () => {
  const check = (token, want) =>
    assert.rejects(apis.validateApiKey(token), (err) => {
      assert.ok(err instanceof ApiKeyValidateException, `${err.constructor.name}: ${err.message}`);
      assert.deepEqual(Object.keys(err.fieldToErrors), ["api_key_token"]);
      assert.match(err.fieldToErrors.api_key_token[0], want);
      return true;
    });
  await check("kgp_" + "a".repeat(40), /invalid/);
  await check("definitely not a key", /invalid/);

  const archived = await apis.createApiKey({ userId: "bob" });
  assert.equal(await apis.deleteApiKey(archived.apiKeyId), true);
  await check(archived.apiKeyToken, /invalid/);

  const blocked = await apis.createApiKey({ userId: "bob" });
  await admin("POST", "/v1/users/bob/block");
  await check(blocked.apiKeyToken, /invalid/);
  await admin("POST", "/v1/users/bob/unblock");
  assert.equal((await apis.validateApiKey(blocked.apiKeyToken)).userId, "bob"); // valid again

  const expiring = await apis.createApiKey({ userId: "bob", expiresAtSeconds: nowSeconds() + 1 });
  await waitFor("the key to expire", async () => {
    try {
      await apis.validateApiKey(expiring.apiKeyToken);
      return "still valid";
    } catch (err) {
      return err instanceof ApiKeyValidateException && /expired/.test(err.fieldToErrors.api_key_token[0]) ? true : err.message;
    }
  });
});

test("rate limits: ApiKeyValidateRateLimitedException, shared with the proxy", async () => {
  // limited's own limit is 2 an hour; validations and proxied requests share it.
  const key = await apis.createApiKey({ userId: "limited" });
  await apis.validateApiKey(key.apiKeyToken);
  assert.equal((await proxied(key.apiKeyToken)).status, 200);
  await assert.rejects(apis.validateApiKey(key.apiKeyToken), (err) => {
    assert.ok(err instanceof ApiKeyValidateRateLimitedException, `${err.constructor.name}: ${err.message}`);
    assert.equal(typeof err.waitSeconds, "number");
    assert.ok(err.waitSeconds > 0, `waitSeconds ${err.waitSeconds}`);
    assert.equal(err.errorCode, "rate_limit_exceeded");
    assert.equal(typeof err.userFacingError, "string");
    return true;
  });
  const proxiedAfter = await proxied(key.apiKeyToken);
  assert.equal(proxiedAfter.status, 429);
  // The raw answer carries Retry-After.
  const res = await rawFetch(ADMIN + "/api/backend/v1/end_user_api_keys/validate", {
    method: "POST",
    headers: { Authorization: "Bearer " + TOKEN, "Content-Type": "application/json" },
    body: JSON.stringify({ api_key_token: key.apiKeyToken }),
  });
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get("retry-after")) >= 1);
  // Another user's key is not affected: limits are per owner.
  assert.equal((await apis.validateApiKey((await apis.createApiKey({ userId: "bob" })).apiKeyToken)).userId, "bob");
});

test("updateApiKey: expiry, metadata as object or JSON string, never expire; errors", async () => {
  const { apiKeyId } = await apis.createApiKey({ userId: "alice", metadata: { a: 1 } });
  const later = nowSeconds() + 7200;
  assert.equal(await apis.updateApiKey(apiKeyId, { expiresAtSeconds: later }), true);
  let rec = await apis.fetchApiKey(apiKeyId);
  assert.equal(rec.expiresAtSeconds, later);
  assert.deepEqual(rec.metadata, { a: 1 }); // absent = unchanged

  assert.equal(await apis.updateApiKey(apiKeyId, { metadata: JSON.stringify({ b_c: 2 }) }), true); // the TS type: string
  rec = await apis.fetchApiKey(apiKeyId);
  assert.deepEqual(rec.metadata, { b_c: 2 });
  assert.equal(rec.expiresAtSeconds, later);

  assert.equal(await apis.updateApiKey(apiKeyId, { metadata: { d: [1, 2] }, setToNeverExpire: true }), true);
  rec = await apis.fetchApiKey(apiKeyId);
  assert.deepEqual(rec.metadata, { d: [1, 2] });
  assert.equal(rec.expiresAtSeconds, null);

  await rejectsField(apis.updateApiKey(apiKeyId, { expiresAtSeconds: nowSeconds() - 5 }), ApiKeyUpdateException, "expires_at_seconds");
  await rejectsField(apis.updateApiKey(apiKeyId, { metadata: "[1]" }), ApiKeyUpdateException, "metadata");
  await assert.rejects(apis.updateApiKey("e".repeat(32), { metadata: {} }), { message: "Unknown error when updating the end user api key" });
  await apis.deleteApiKey(apiKeyId);
  await rejectsField(apis.updateApiKey(apiKeyId, { metadata: {} }), ApiKeyUpdateException, "api_key_id"); // archived
});

test("deleteApiKey archives: true, idempotent, false for an unknown id", async () => {
  const { apiKeyId } = await apis.createApiKey({ userId: "alice", displayName: "to delete" });
  assert.equal(await apis.deleteApiKey(apiKeyId), true);
  assert.equal(await apis.deleteApiKey(apiKeyId), true);
  assert.equal(await apis.deleteApiKey("d".repeat(32)), false);
  assert.equal((await apis.fetchApiKey(apiKeyId)).apiKeyId, apiKeyId); // the record stays
  const archived = await apis.fetchArchivedApiKeys({ userId: "alice", pageSize: 1000 });
  assert.ok(archived.apiKeys.some((k) => k.apiKeyId === apiKeyId));
  const current = await apis.fetchCurrentApiKeys({ userId: "alice", pageSize: 1000 });
  assert.ok(!current.apiKeys.some((k) => k.apiKeyId === apiKeyId));
});

test("fetchCurrentApiKeys and fetchArchivedApiKeys: pages from 0, no repeats, no skips", async () => {
  const made = new Set();
  for (let i = 0; i < 25; i++) made.add((await apis.createApiKey({ userId: "pager", metadata: { i } })).apiKeyId);

  const first = await apis.fetchCurrentApiKeys({ userId: "pager" });
  assert.equal(first.currentPage, 0);
  assert.equal(first.pageSize, 10); // PropelAuth's default
  assert.equal(first.totalApiKeys, 25);
  assert.equal(first.apiKeys.length, 10);
  assert.equal(first.hasMoreResults, true);

  const seen = [];
  for (let page = 0; ; page++) {
    const p = await apis.fetchCurrentApiKeys({ userEmail: "pager@example.com", pageSize: 7, pageNumber: page });
    assert.equal(p.currentPage, page);
    assert.equal(p.totalApiKeys, 25);
    seen.push(...p.apiKeys.map((k) => k.apiKeyId));
    if (!p.hasMoreResults) break;
  }
  assert.equal(seen.length, 25);
  assert.equal(new Set(seen).size, 25, "no key twice");
  assert.deepEqual(new Set(seen), made, "no key skipped");
  // Newest first, ties broken by id.
  const recs = (await apis.fetchCurrentApiKeys({ userId: "pager", pageSize: 100 })).apiKeys;
  for (let i = 1; i < recs.length; i++) {
    const a = recs[i - 1], b = recs[i];
    assert.ok(a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.apiKeyId < b.apiKeyId), "order");
  }
  const beyond = await apis.fetchCurrentApiKeys({ userId: "pager", pageSize: 10, pageNumber: 9 });
  assert.deepEqual(beyond.apiKeys, []);
  assert.equal(beyond.hasMoreResults, false);

  const gone = [...made].slice(0, 3);
  for (const id of gone) await apis.deleteApiKey(id);
  assert.equal((await apis.fetchCurrentApiKeys({ userId: "pager" })).totalApiKeys, 22);
  const archived = await apis.fetchArchivedApiKeys({ userId: "pager", pageSize: 2, pageNumber: 1 });
  assert.equal(archived.totalApiKeys, 3);
  assert.equal(archived.apiKeys.length, 1);
  assert.equal(archived.hasMoreResults, false);

  const byOrg = await apis.fetchCurrentApiKeys({ orgId: "acme", pageSize: 1000 });
  assert.ok(byOrg.apiKeys.length > 0 && byOrg.apiKeys.every((k) => k.orgId === "acme"));
  await rejectsField(apis.fetchCurrentApiKeys({ pageSize: 0 }), ApiKeyFetchException, "page_size");
});

test("fetchApiKeyUsage: validations per UTC day, by key, user, org or all", async () => {
  const personal = await apis.createApiKey({ userId: "counter" });
  const org = await apis.createApiKey({ orgId: "acme", userId: "counter" });
  for (let i = 0; i < 3; i++) await apis.validateApiKey(personal.apiKeyToken);
  assert.equal((await proxied(personal.apiKeyToken)).status, 200); // proxied requests count too
  await apis.validateOrgApiKey(org.apiKeyToken);
  const date = utcDate();

  await waitFor("usage of the personal key", async () => {
    const { count } = await apis.fetchApiKeyUsage({ date, api_key_id: personal.apiKeyId });
    return count === 4 || count;
  });
  assert.deepEqual(await apis.fetchApiKeyUsage({ date, api_key_id: org.apiKeyId }), { count: 1 });
  // user_id: the user's personal keys and the org keys they created.
  assert.deepEqual(await apis.fetchApiKeyUsage({ date, userId: "counter" }), { count: 5 });
  assert.deepEqual(await apis.fetchApiKeyUsage({ date, userId: "counter", orgId: "acme" }), { count: 1 });
  const { count: orgCount } = await apis.fetchApiKeyUsage({ date, orgId: "acme" });
  assert.ok(orgCount >= 1);
  // {apiKeyId} is dropped by the SDK (it reads api_key_id): no filter means all keys.
  const { count: all } = await apis.fetchApiKeyUsage({ date, apiKeyId: personal.apiKeyId });
  assert.ok(all >= 5 + orgCount - 1, `all keys: ${all}`);
  assert.deepEqual(await apis.fetchApiKeyUsage({ date: "2001-01-01", api_key_id: personal.apiKeyId }), { count: 0 });
  // The same count as keygate's own usage API.
  const native = await admin("GET", `/v1/usage?key_id=${personal.apiKeyId}&interval=day&from=${Date.parse(date) / 1000}&to=${Date.parse(date) / 1000 + 86400}`);
  assert.equal(native.total, 4);

  await rejectsField(apis.fetchApiKeyUsage({ date: "yesterday" }), ApiKeyFetchException, "date");
  await rejectsField(apis.fetchApiKeyUsage({}), ApiKeyFetchException, "date");
});

test("importApiKey and validateImportedApiKey", async () => {
  const legacy = "legacy_" + Math.random().toString(36).slice(2) + "_abcdef0123456789";
  const imported = await apis.importApiKey({ importedApiKey: legacy, userId: "alice", metadata: { from: "propelauth" }, displayName: "old key" });
  assert.deepEqual(Object.keys(imported), ["apiKeyId"]); // the TS type says api_key_id; the runtime value is camelCased
  assert.match(imported.apiKeyId, HEX32);

  const v = await apis.validateImportedApiKey(legacy);
  assert.equal(v.user.userId, "alice");
  assert.equal(v.org, null);
  assert.deepEqual(v.metadata, { from: "propelauth" });
  assert.equal((await apis.validateApiKey(legacy)).userId, "alice");
  const rec = await apis.fetchApiKey(imported.apiKeyId);
  assert.equal(rec.displayName, "old key");
  const through = await proxied(legacy);
  assert.equal(through.status, 200);
  assert.equal(through.body.headers["X-Keygate-Key-Id"][0], imported.apiKeyId);

  const orgImport = await apis.importApiKey({ importedApiKey: legacy + "-org", orgId: "acme", expiresAtSeconds: nowSeconds() + 600 });
  assert.equal((await apis.fetchApiKey(orgImport.apiKeyId)).orgId, "acme");

  await rejectsField(apis.importApiKey({ importedApiKey: legacy, userId: "alice" }), ApiKeyImportException, "imported_api_key"); // duplicate
  await rejectsField(apis.importApiKey({ userId: "alice" }), ApiKeyImportException, "imported_api_key"); // missing
  await rejectsField(apis.importApiKey({ importedApiKey: legacy + "-x", userId: "nobody" }), ApiKeyImportException, "user_id");
  await assert.rejects(apis.validateImportedApiKey("legacy_never_imported"), ApiKeyValidateException);
});

test("keys made through the SDK work on the proxy port", async () => {
  const personal = await apis.createApiKey({ userId: "alice", metadata: { plan: "pro" } });
  const r = await proxied(personal.apiKeyToken);
  assert.equal(r.status, 200);
  assert.equal(r.body.headers["X-Keygate-Key-Id"][0], personal.apiKeyId);
  assert.equal(r.body.headers["X-Keygate-User-Id"][0], "alice");
  assert.equal(r.body.headers["X-Keygate-Metadata"][0], '{"plan":"pro"}');

  const org = await apis.createApiKey({ orgId: "acme", userId: "alice" });
  const o = await proxied(org.apiKeyToken);
  assert.equal(o.status, 200);
  assert.equal(o.body.headers["X-Keygate-Org-Id"][0], "acme");

  await apis.deleteApiKey(personal.apiKeyId);
  assert.equal((await proxied(personal.apiKeyToken)).status, 401);
});

test("a wrong integration API key: every call says integrationApiKey is incorrect", async () => {
  const wrong = getApis(authUrl, "not-the-admin-token");
  const id = "a".repeat(32);
  const calls = {
    createApiKey: () => wrong.createApiKey({ userId: "alice" }),
    fetchApiKey: () => wrong.fetchApiKey(id),
    fetchCurrentApiKeys: () => wrong.fetchCurrentApiKeys({}),
    fetchArchivedApiKeys: () => wrong.fetchArchivedApiKeys({}),
    updateApiKey: () => wrong.updateApiKey(id, { metadata: {} }),
    deleteApiKey: () => wrong.deleteApiKey(id),
    validateApiKey: () => wrong.validateApiKey("kgp_x"),
    validatePersonalApiKey: () => wrong.validatePersonalApiKey("kgp_x"),
    validateOrgApiKey: () => wrong.validateOrgApiKey("kgp_x"),
    importApiKey: () => wrong.importApiKey({ importedApiKey: "x" }),
    validateImportedApiKey: () => wrong.validateImportedApiKey("x"),
    fetchApiKeyUsage: () => wrong.fetchApiKeyUsage({ date: utcDate() }),
  };
  for (const [name, call] of Object.entries(calls)) {
    await assert.rejects(call(), { message: "integrationApiKey is incorrect" }, name);
  }
});
