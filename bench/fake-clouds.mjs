// Instant fakes of the keyless providers' token endpoints for the benchmark (not for
// tests: no request is checked beyond its method and path), counting calls per route.
// The broker's endpoint overrides are base URLs without a path (it appends the
// documented one), so every route lives at the root of this one port:
//   POST /v1/token                            Google STS            (type = "gar")
//   POST /<tenant>/oauth2/v2.0/token          Entra                 (type = "acr", 1 of 3)
//   POST /oauth2/exchange                     ACR refresh token     (type = "acr", 2 of 3)
//   POST /oauth2/token                        ACR access token      (type = "acr", 3 of 3)
//   GET  /oauth2/federation/robot/token       Quay robot federation (type = "quay")
//   node bench/fake-clouds.mjs PORT    GET /counts → {"google_sts":N,…,"unmatched":N}, POST /reset
// Anything else answers 404 and counts as `unmatched`, so a misrouted call fails the
// request (the broker answers non-2xx) instead of passing as another route's.
import http from "node:http";

const port = Number(process.argv[2] || 4698);
const zero = () => ({ google_sts: 0, entra: 0, acr_exchange: 0, acr_token: 0, quay: 0, unmatched: 0 });
let counts = zero();

// An unsigned JWT: the broker reads only `exp` of ACR's and Quay's tokens.
const b64url = (s) => Buffer.from(s).toString("base64url");
const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT" }));
const jwt = (seconds) =>
  `${header}.${b64url(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + seconds }))}.bench-signature`;

const google = JSON.stringify({
  access_token: "ya29.bench",
  issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
  token_type: "Bearer",
  expires_in: 3599,
});
const entra = JSON.stringify({ token_type: "Bearer", expires_in: 3599, access_token: "entra-bench" });
const ENTRA = /^\/[^/]+\/oauth2\/v2\.0\/token$/;

http.createServer((req, res) => {
  req.resume(); // bodies are not read
  req.on("end", () => {
    const path = req.url.split("?")[0];
    const post = req.method === "POST";
    if (req.method === "GET" && path === "/counts") return json(res, 200, counts);
    if (post && path === "/reset") {
      counts = zero();
      return json(res, 200, {});
    }
    if (post && path === "/v1/token") {
      counts.google_sts++;
      return send(res, 200, google);
    }
    if (post && ENTRA.test(path)) {
      counts.entra++;
      return send(res, 200, entra);
    }
    if (post && path === "/oauth2/exchange") {
      counts.acr_exchange++;
      return json(res, 200, { refresh_token: jwt(3 * 3600) });
    }
    if (post && path === "/oauth2/token") {
      counts.acr_token++;
      return json(res, 200, { access_token: jwt(75 * 60) });
    }
    if (req.method === "GET" && path === "/oauth2/federation/robot/token") {
      counts.quay++;
      return json(res, 200, { token: jwt(3600) });
    }
    counts.unmatched++;
    json(res, 404, { error: "not_found" });
  });
}).listen(port, "127.0.0.1");

function json(res, status, value) {
  send(res, status, JSON.stringify(value));
}

function send(res, status, text) {
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
