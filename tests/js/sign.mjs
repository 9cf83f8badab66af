// Prints GitHub's `X-Hub-Signature-256` value for a body, computed by GitHub's own library
// (@octokit/webhooks-methods), and checks it with the library's verify.
// Usage: node sign.mjs SECRET < body
import { sign, verify } from "@octokit/webhooks-methods";

const secret = process.argv[2];
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const payload = Buffer.concat(chunks).toString("utf8");
const signature = await sign(secret, payload);
if (!(await verify(secret, payload, signature))) {
  console.error("octokit cannot verify its own signature");
  process.exit(2);
}
process.stdout.write(signature);
