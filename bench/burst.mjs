// Upstream-call counts: N concurrent requests, spread over P projects.
//   node bench/burst.mjs BASE_URL TOKEN TOTAL PROJECTS CONCURRENCY
const [base, token, total, projects, concurrency] = process.argv.slice(2);
let next = 0, ok = 0, failed = 0;
async function lane() {
  while (next < Number(total)) {
    const i = next++;
    const r = await fetch(`${base}/registry/credentials?project=p${i % Number(projects)}`, { headers: { authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    r.status === 200 ? ok++ : failed++;
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, lane));
console.log(JSON.stringify({ ok, failed }));
