// The benchmark's bearer tokens, projects p0…p49, 2 h:
//   SECRET=<base64 key> node mint-token.mjs            HS256 token for the `rise-dev` issuer
//   node mint-token.mjs keys <dir>                     writes <dir>/jwks.json and RS256/ES256
//                                                       private keys (<dir>/rs256.jwk, es256.jwk)
//   node mint-token.mjs RS256|ES256 <dir>               a token for `bench-jwks`, signed by it
// Run from bench/, where jose is installed.
import { SignJWT, exportJWK, generateKeyPair, importJWK } from "jose";
import { readFileSync, writeFileSync } from "node:fs";

const [mode = "HS256", dir] = process.argv.slice(2);
const projects = Array.from({ length: 50 }, (_, i) => `p${i}`);
const claims = (iss) => new SignJWT({ projects }).setIssuer(iss).setAudience("rise")
  .setSubject("bench@example.com").setIssuedAt().setExpirationTime("2h");

if (mode === "HS256") {
  const key = Uint8Array.from(atob(process.env.SECRET), (c) => c.charCodeAt(0));
  console.log(await claims("rise-dev").setProtectedHeader({ alg: "HS256" }).sign(key));
} else if (mode === "keys") {
  const keys = [];
  for (const alg of ["RS256", "ES256"]) {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const kid = alg.toLowerCase();
    writeFileSync(`${dir}/${kid}.jwk`, JSON.stringify({ ...(await exportJWK(privateKey)), kid }));
    keys.push({ ...(await exportJWK(publicKey)), kid, alg, use: "sig" });
  }
  writeFileSync(`${dir}/jwks.json`, JSON.stringify({ keys }));
} else {
  const jwk = JSON.parse(readFileSync(`${dir}/${mode.toLowerCase()}.jwk`, "utf8"));
  const key = await importJWK(jwk, mode);
  console.log(await claims("bench-jwks").setProtectedHeader({ alg: mode, kid: jwk.kid }).sign(key));
}
