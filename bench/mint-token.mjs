// The benchmark's bearer token: HS256 for the `rise-dev` issuer, projects p0…p49, 2 h.
//   SECRET=<base64 key> node bench/mint-token.mjs   (run from bench/, where jose is installed)
import { SignJWT } from "jose";

const key = Uint8Array.from(atob(process.env.SECRET), (c) => c.charCodeAt(0));
const projects = Array.from({ length: 50 }, (_, i) => `p${i}`);
console.log(await new SignJWT({ projects }).setProtectedHeader({ alg: "HS256" }).setIssuer("rise-dev")
  .setAudience("rise").setSubject("bench@example.com").setIssuedAt().setExpirationTime("2h").sign(key));
