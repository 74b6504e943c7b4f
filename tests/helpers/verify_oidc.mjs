// Independent OIDC verification with `jose`, as a relying party does it: read the
// issuer's discovery document, follow `jwks_uri`, verify the token's signature, `iss`,
// `aud` and `exp`. Usage: node verify_oidc.mjs <issuer> <audience> <token>
// Prints the verified claims as JSON; exits 1 (with the reason) when verification fails.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [issuer, audience, token] = process.argv.slice(2);
try {
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  if (discovery.issuer !== issuer) throw new Error(`discovery names issuer ${discovery.issuer}`);
  const keys = createRemoteJWKSet(new URL(discovery.jwks_uri));
  const { payload, protectedHeader } = await jwtVerify(token, keys, {
    issuer,
    audience,
    algorithms: discovery.id_token_signing_alg_values_supported,
    requiredClaims: ["exp", "iat", "sub"],
  });
  console.log(JSON.stringify({ header: protectedHeader, claims: payload }));
} catch (err) {
  console.error(`rejected: ${err.code ?? ""} ${err.message}`);
  process.exit(1);
}
