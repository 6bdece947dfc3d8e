// @ts-check
/**
 * `npm run stack`: the real gateway for `npm run dev`. Starts fake-ollama and llm-quota (from
 * target/debug) with the admin API on 127.0.0.1:8001, where the Vite dev server proxies /api.
 * Password: `dev` (or ADMIN_PASSWORD). Stop with Ctrl-C.
 */
import { startStack } from "../e2e/stack.mjs";

const stack = await startStack({
  password: process.env.ADMIN_PASSWORD ?? "dev",
  adminPort: Number(process.env.ADMIN_PORT ?? 8001),
  proxyPort: Number(process.env.PROXY_PORT ?? 0),
});
console.log(`admin ${stack.admin} (password: ${stack.password})`);
console.log(`proxy ${stack.proxy}  fake ollama ${stack.ollama}`);
console.log("now run `npm run dev` and open http://localhost:5173");
const stop = async () => {
  await stack.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
setInterval(() => {}, 1 << 30);
