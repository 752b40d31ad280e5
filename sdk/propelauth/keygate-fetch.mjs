// Sends PropelAuth's Node SDK to keygate. The SDK (@propelauth/node-apis)
// calls the global fetch with the hard-coded origin https://propelauth-api.com;
// routePropelAuthTo replaces globalThis.fetch with one that sends those calls
// to keygate's admin port instead and leaves every other request alone.
// Copy this file into your app (README, "Moving from PropelAuth").

const PROPELAUTH_ORIGIN = "https://propelauth-api.com";

// routePropelAuthTo installs the wrapper and returns a function that removes it.
// adminURL is keygate's admin port, such as "http://127.0.0.1:9080".
export function routePropelAuthTo(adminURL) {
  const base = new URL(adminURL).origin;
  const inner = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (url === PROPELAUTH_ORIGIN || url.startsWith(PROPELAUTH_ORIGIN + "/")) {
      const to = base + url.slice(PROPELAUTH_ORIGIN.length);
      return inner(typeof input === "string" || input instanceof URL ? to : new Request(to, input), init);
    }
    return inner(input, init);
  };
  return () => {
    globalThis.fetch = inner;
  };
}
