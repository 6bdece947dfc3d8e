// @ts-check
/**
 * Starts the real product for end-to-end runs and local development: `fake-ollama` and
 * `llm-quota serve` from `target/debug`, on free ports (port 0), with a SQLite database in a
 * fresh temporary folder. Both print their addresses on stdout; we read them from there.
 * Plain JavaScript (checked by tsc through JSDoc) so Node 20 runs it without a transpiler.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

/**
 * @typedef {object} Stack
 * @property {string} proxy Base URL of the proxy (what API-key holders call).
 * @property {string} admin Base URL of the admin listener (the UI and `/api`).
 * @property {string} metrics
 * @property {string} ollama
 * @property {string} password
 * @property {string} dir The temporary folder holding the database.
 * @property {() => Promise<void>} stop
 */

/**
 * @typedef {object} StackOptions
 * @property {string} [password]
 * @property {number} [adminPort]
 * @property {number} [proxyPort]
 * @property {boolean} [keep] Keep the database folder after stop.
 */

export const repoRoot = resolve(import.meta.dirname, "..", "..");

/** @param {"llm-quota" | "fake-ollama"} name */
export function binary(name) {
  const variable = name === "llm-quota" ? "LLM_QUOTA_BIN" : "FAKE_OLLAMA_BIN";
  return process.env[variable] ?? join(repoRoot, "target", "debug", name);
}

/**
 * Spawns `cmd` in `cwd` (a fresh folder, so no `.env` or `conf/llm-quota.yaml` of the
 * checkout is read) and resolves with the first stdout line matching `pattern`.
 * @param {string} cmd
 * @param {string[]} args
 * @param {NodeJS.ProcessEnv} env
 * @param {RegExp} pattern
 * @param {string} label
 * @param {string} cwd
 * @returns {Promise<{ child: import("node:child_process").ChildProcess, match: RegExpMatchArray }>}
 */
function startAndRead(cmd, args, env, pattern, label, cwd) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += chunk.toString();
      if (process.env.STACK_VERBOSE) process.stderr.write(`[${label}] ${chunk}`);
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${label}: no address line within 30 s\n${stderr}`));
    }, 30_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`${label}: cannot start ${cmd}: ${e.message} (build it: cargo build -p llm-quota -p fake-ollama)`));
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code}\n${stderr}`));
    });
    if (!child.stdout) return reject(new Error(`${label}: no stdout`));
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      const match = line.match(pattern);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolvePromise({ child, match });
      }
    });
  });
}

/** @param {import("node:child_process").ChildProcess} child */
function stopChild(child) {
  return /** @type {Promise<void>} */ (
    new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      child.once("exit", () => {
        clearTimeout(timer);
        done();
      });
      child.kill("SIGTERM");
    })
  );
}

/**
 * @param {StackOptions} [options]
 * @returns {Promise<Stack>}
 */
export async function startStack(options = {}) {
  const password = options.password ?? "e2e-admin-password";
  const dir = mkdtempSync(join(tmpdir(), "llm-quota-ui-"));
  const fake = await startAndRead(
    binary("fake-ollama"),
    ["--listen", "127.0.0.1:0", "--models", "llama3,qwen3:8b,mistral:7b,nomic-embed-text"],
    { PATH: process.env.PATH },
    /^listening on (http:\/\/\S+)$/,
    "fake-ollama",
    dir,
  );
  const ollama = fake.match[1];
  /** @type {Awaited<ReturnType<typeof startAndRead>>} */
  let gateway;
  try {
    gateway = await startAndRead(
      binary("llm-quota"),
      ["serve"],
      {
        PATH: process.env.PATH,
        ADMIN_PASSWORD: password,
        PROXY_HOST: "127.0.0.1",
        PROXY_PORT: String(options.proxyPort ?? 0),
        ADMIN_PORT: String(options.adminPort ?? 0),
        METRICS_PORT: "0",
        DATABASE_URL: `sqlite://${dir}/q.db`,
        OLLAMA_URL: ollama,
        DEFAULT_MODEL: "llama3",
        APP_TZ: "Europe/Berlin",
        LOG_LEVEL: "warn",
      },
      /^llm-quota: proxy on (http:\/\/\S+), admin on (http:\/\/\S+), metrics on (http:\/\/\S+)$/,
      "llm-quota",
      dir,
    );
  } catch (e) {
    await stopChild(fake.child);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    proxy: gateway.match[1],
    admin: gateway.match[2],
    metrics: gateway.match[3],
    ollama,
    password,
    dir,
    async stop() {
      await stopChild(gateway.child);
      await stopChild(fake.child);
      if (!options.keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}
