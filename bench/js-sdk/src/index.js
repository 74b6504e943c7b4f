// Size baseline: the same ECR flow with AWS SDK v3 clients (bundled by wrangler/esbuild).
import { STSClient, AssumeRoleCommand } from "@aws-sdk/client-sts";
import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import { jwtVerify } from "jose";

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const project = url.searchParams.get("project");
    if (!project || !/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(project)) {
      return Response.json({ error: "invalid project name", code: "invalid_project" }, { status: 400 });
    }
    const token = (request.headers.get("authorization") || "").replace(/^bearer\s+/i, "");
    const key = Uint8Array.from(atob(env.RISE_JWT_SECRET), (c) => c.charCodeAt(0));
    const { payload } = await jwtVerify(token, key, { issuer: "rise-dev", audience: "rise", algorithms: ["HS256"] });
    if (!payload.projects?.includes(project)) return Response.json({ error: "forbidden", code: "forbidden" }, { status: 403 });
    const region = env.RISE_REGISTRY__REGION;
    const sts = new STSClient({ region, endpoint: env.RISE_REGISTRY__STS_ENDPOINT,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } });
    const repo = `${env.RISE_REGISTRY__REPO_PREFIX || ""}${project}`;
    const { Credentials } = await sts.send(new AssumeRoleCommand({
      RoleArn: env.RISE_REGISTRY__PUSH_ROLE_ARN, RoleSessionName: "rise", DurationSeconds: 3600,
      Policy: JSON.stringify({ Version: "2012-10-17", Statement: [
        { Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" },
        { Effect: "Allow", Action: ["ecr:PutImage"], Resource: `arn:aws:ecr:${region}:${env.RISE_REGISTRY__ACCOUNT_ID}:repository/${repo}` }] }),
    }));
    const ecr = new ECRClient({ region, endpoint: env.RISE_REGISTRY__ECR_ENDPOINT, credentials: {
      accessKeyId: Credentials.AccessKeyId, secretAccessKey: Credentials.SecretAccessKey, sessionToken: Credentials.SessionToken } });
    const { authorizationData } = await ecr.send(new GetAuthorizationTokenCommand({}));
    const [username, password] = atob(authorizationData[0].authorizationToken).split(":");
    return Response.json({ credentials: { username, password }, repository: repo });
  },
};
