// The floor: a worker that writes one log line and answers a small JSON — what any worker
// costs in this runtime before doing any work of its own.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    console.log(JSON.stringify({ event: "trivial", path: url.pathname }));
    return new Response(JSON.stringify({ ok: true }), {
      headers: { "content-type": "application/json", "cache-control": "no-store" },
    });
  },
};
