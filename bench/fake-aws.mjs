// An instant fake STS + ECR for the benchmark (not for tests): answers every AssumeRole
// and GetAuthorizationToken at once, and counts calls per project.
//   node bench/fake-aws.mjs PORT       GET /counts → {"sts":N,"ecr":N,"per_project":{...}}, POST /reset
import http from "node:http";

const port = Number(process.argv[2] || 4599);
let counts = { sts: 0, ecr: 0, per_project: {} };
const token = Buffer.from("AWS:bench-password").toString("base64");

http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    if (req.method === "GET" && req.url === "/counts") return send(res, 200, "application/json", JSON.stringify(counts));
    if (req.method === "POST" && req.url === "/reset") {
      counts = { sts: 0, ecr: 0, per_project: {} };
      return send(res, 200, "application/json", "{}");
    }
    if (req.url.startsWith("/sts")) {
      counts.sts++;
      const m = decodeURIComponent(body).match(/repository\/([^"]+)"/);
      const project = m ? m[1] : "?";
      counts.per_project[project] = (counts.per_project[project] || 0) + 1;
      const exp = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
      return send(res, 200, "text/xml", `<AssumeRoleResponse><AssumeRoleResult><AssumedRoleUser><AssumedRoleId>A:b</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/p/b</Arn></AssumedRoleUser><Credentials><AccessKeyId>ASIABENCH</AccessKeyId><SecretAccessKey>bench-secret</SecretAccessKey><SessionToken>bench-token</SessionToken><Expiration>${exp}</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></AssumeRoleResponse>`);
    }
    counts.ecr++;
    send(res, 200, "application/x-amz-json-1.1", JSON.stringify({ authorizationData: [{ authorizationToken: token, expiresAt: Date.now() / 1000 + 43200, proxyEndpoint: "https://x" }] }));
  });
}).listen(port, "127.0.0.1");

function send(res, status, type, text) {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(text);
}
